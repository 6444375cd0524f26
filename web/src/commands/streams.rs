//! `artel streams`: the stream registry, as a table or JSON.

use crate::cli::StreamsArgs;
use artel_messages::streams;

pub fn run(args: StreamsArgs) -> anyhow::Result<()> {
    if args.json {
        println!("{}", serde_json::to_string_pretty(streams::STREAMS)?);
    } else {
        print!("{}", streams::render_table());
    }
    Ok(())
}
