//! What a request cost: normalized token counts priced by the `[llm.prices]` table.
//!
//! The dialects count cached tokens differently, and getting it wrong double-bills or
//! under-bills every cached prompt:
//! - OpenAI (and compatible servers): `prompt_tokens` *includes* the
//!   `prompt_tokens_details.cached_tokens` read from the cache;
//! - Anthropic: `input_tokens` *excludes* `cache_read_input_tokens` and
//!   `cache_creation_input_tokens`, which come on top.
//!
//! [`Usage::from_openai`] and [`Usage::from_anthropic`] bring both to one meaning ([`Usage`]:
//! `input` counts every input token, `cached_input` the cache reads among them); [`cost`]
//! then prices uncached input, cached input and output. Anthropic bills cache *writes* at
//! 1.25× input; artel never asks for them (it sends no `cache_control`), so they are priced
//! as plain input. Prices are USD per million tokens, which is micro-USD per token: costs are
//! kept in whole micro-USD (as `llm_requests.cost_micro_usd`), rounded up so budgets never
//! under-count.

use super::conversation::Usage;
use crate::settings::ModelPrice;
use std::collections::BTreeMap;

impl Usage {
    /// OpenAI's counts: `cached_tokens` are part of `prompt_tokens`.
    pub fn from_openai(prompt_tokens: u64, completion_tokens: u64, cached_tokens: u64) -> Self {
        Self {
            input: prompt_tokens,
            output: completion_tokens,
            cached_input: cached_tokens.min(prompt_tokens),
        }
    }

    /// Anthropic's counts: cache reads and writes come on top of `input_tokens`.
    pub fn from_anthropic(
        input_tokens: u64,
        output_tokens: u64,
        cache_read_input_tokens: u64,
        cache_creation_input_tokens: u64,
    ) -> Self {
        Self {
            input: input_tokens + cache_read_input_tokens + cache_creation_input_tokens,
            output: output_tokens,
            cached_input: cache_read_input_tokens,
        }
    }
}

/// The cost of `usage` at `price`, in micro-USD, rounded up.
pub fn cost_micro_usd(price: &ModelPrice, usage: &Usage) -> u64 {
    let cached = usage.cached_input.min(usage.input);
    let uncached = usage.input - cached;
    let cached_price = price.cached_input.unwrap_or(price.input);
    let micro = uncached as f64 * price.input
        + cached as f64 * cached_price
        + usage.output as f64 * price.output;
    // Float noise must not round 1.0000000001 up to 2.
    (micro - 1e-6).ceil().max(0.0) as u64
}

/// The cost of `usage` on `model`, or `None` when the table has no price for it.
pub fn cost(prices: &BTreeMap<String, ModelPrice>, model: &str, usage: &Usage) -> Option<u64> {
    prices.get(model).map(|price| cost_micro_usd(price, usage))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// USD per million tokens: input 3, output 15, cache reads 0.30.
    fn price() -> ModelPrice {
        ModelPrice {
            input: 3.0,
            output: 15.0,
            cached_input: Some(0.3),
        }
    }

    #[test]
    fn openai_cached_tokens_are_inside_prompt_tokens() {
        // 10 000 prompt tokens of which 8 000 cached, 1 000 out.
        let usage = Usage::from_openai(10_000, 1_000, 8_000);
        assert_eq!(usage.input, 10_000);
        assert_eq!(usage.cached_input, 8_000);
        // 2 000 × 3 + 8 000 × 0.3 + 1 000 × 15 = 6 000 + 2 400 + 15 000 micro-USD.
        assert_eq!(cost_micro_usd(&price(), &usage), 23_400);
    }

    #[test]
    fn anthropic_cache_tokens_come_on_top_of_input_tokens() {
        // 2 000 fresh input tokens, 8 000 read from the cache, none written, 1 000 out: the
        // same prompt as above, so the same cost.
        let usage = Usage::from_anthropic(2_000, 1_000, 8_000, 0);
        assert_eq!(usage, Usage::from_openai(10_000, 1_000, 8_000));
        assert_eq!(cost_micro_usd(&price(), &usage), 23_400);
        // Cache writes are input at the input price.
        let written = Usage::from_anthropic(2_000, 0, 0, 1_000);
        assert_eq!(cost_micro_usd(&price(), &written), 9_000);
    }

    #[test]
    fn missing_cache_price_means_input_price_and_costs_round_up() {
        let plain = ModelPrice {
            input: 0.15,
            output: 0.6,
            cached_input: None,
        };
        let usage = Usage::from_openai(10, 1, 10);
        // 10 × 0.15 + 1 × 0.6 = 2.1 micro-USD → 3.
        assert_eq!(cost_micro_usd(&plain, &usage), 3);
        assert_eq!(cost_micro_usd(&plain, &Usage::default()), 0);
        let exact = ModelPrice {
            input: 1.0,
            output: 0.0,
            cached_input: None,
        };
        assert_eq!(cost_micro_usd(&exact, &Usage::from_openai(7, 0, 0)), 7);
    }

    #[test]
    fn an_unknown_model_has_no_cost() {
        let prices = BTreeMap::from([("claude-x".to_owned(), price())]);
        let usage = Usage::from_anthropic(1, 1, 0, 0);
        assert_eq!(cost(&prices, "claude-x", &usage), Some(18));
        assert_eq!(cost(&prices, "gpt-unknown", &usage), None);
    }
}
