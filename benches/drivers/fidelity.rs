//! Fidelity of the offline path: for every request of the fixed list
//! (`artel_actors::analyst::cases::CASES`), does the deployed API have every resource, field
//! and action the request names — and is a request outside the offline range declined?
//!
//! For each request it reads the spec (the Analyst), compiles it (the offline agent's
//! `spec_service`), starts the service with `python3` on a free port, and asks it over HTTP:
//! every named resource lists (200) and creates a record (201) holding every named field,
//! every named action answers (200; a redirect 302). The baseline, measured in the same run,
//! is the template generator the spec replaced (`template::blueprint`): does its one
//! resource have what the request names? Prints a Markdown table and the totals.
//!
//! Run: `cargo run --release -p artel-benches --bin fidelity`

use artel_actors::acceptance::api::{Api, Kind, sample};
use artel_actors::agent::{spec_service, template};
use artel_actors::analyst::{self, cases::CASES, cases::Case, cases::problems};
use serde_json::{Map, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A service started from a compiled spec; stopped on drop.
struct Service {
    child: Child,
    base: String,
    _dir: std::path::PathBuf,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

async fn start(spec: &artel_messages::spec::Spec, n: usize) -> Result<Service, String> {
    let dir = std::env::temp_dir().join(format!("artel-fidelity-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("data")).map_err(|e| e.to_string())?;
    for file in spec_service::render(spec, "fidelity", "fidelity") {
        let path = dir.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(path, file.contents).map_err(|e| e.to_string())?;
    }
    let port = free_port();
    let child = Command::new("python3")
        .arg("app.py")
        .current_dir(&dir)
        .env("PORT", port.to_string())
        .env("HOST", "127.0.0.1")
        .env("DATA_DIR", dir.join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("python3: {e}"))?;
    let service = Service {
        child,
        base: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if client
            .get(format!("{}/health", service.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(service);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err("the service did not answer /health".to_owned())
}

/// What the running service lacks of what `case` names.
async fn deployed_problems(
    case: &Case,
    spec: &artel_messages::spec::Spec,
    n: usize,
) -> Vec<String> {
    let service = match start(spec, n).await {
        Ok(service) => service,
        Err(e) => return vec![e],
    };
    let api = Api::of(spec);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut ids: Map<String, Value> = Map::new();
    // Parents first, so children can name them.
    let mut order: Vec<&artel_actors::acceptance::api::Resource> = api.resources.iter().collect();
    order.sort_by_key(|r| r.parents.len());
    for resource in order {
        let url = format!("{}/api/{}", service.base, resource.plural);
        match client.get(&url).send().await {
            Ok(r) if r.status().as_u16() == 200 => {}
            Ok(r) => out.push(format!("GET {} → {}", resource.plural, r.status())),
            Err(e) => out.push(format!("GET {}: {e}", resource.plural)),
        }
        let mut body = Map::new();
        for field in resource.fields.iter().filter(|f| f.writable) {
            let value = match field.kind {
                Kind::Reference => field
                    .parent
                    .as_ref()
                    .and_then(|p| ids.get(p).cloned())
                    .unwrap_or(Value::Null),
                _ => sample(field, n),
            };
            body.insert(field.name.clone(), value);
        }
        let created: Value = match client.post(&url).json(&body).send().await {
            Ok(r) if r.status().as_u16() == 201 => r.json().await.unwrap_or(Value::Null),
            Ok(r) => {
                out.push(format!("POST {} → {}", resource.plural, r.status()));
                continue;
            }
            Err(e) => {
                out.push(format!("POST {}: {e}", resource.plural));
                continue;
            }
        };
        let id = created.get("id").cloned().unwrap_or(Value::Null);
        ids.insert(resource.plural.clone(), id.clone());
        let id = id.as_str().map_or_else(|| id.to_string(), str::to_owned);
        if let Some((_, fields)) = case.resources.iter().find(|(p, _)| *p == resource.plural) {
            for (name, _) in *fields {
                if created.get(*name).is_none() {
                    out.push(format!("{} records have no {name}", resource.plural));
                }
            }
        }
        for (plural, action) in case.actions.iter().filter(|(p, _)| *p == resource.plural) {
            let answer = if *action == "redirect" {
                client.get(format!("{}/r/{id}", service.base)).send().await
            } else {
                client
                    .post(format!("{url}/{id}/{action}"))
                    .json(&Value::Object(Map::new()))
                    .send()
                    .await
            };
            let want = if *action == "redirect" { 302 } else { 200 };
            match answer {
                Ok(r) if r.status().as_u16() == want => {}
                Ok(r) => out.push(format!("{plural} {action} → {}", r.status())),
                Err(e) => out.push(format!("{plural} {action}: {e}")),
            }
        }
    }
    out
}

/// What the template generator's one resource lacks of what `case` names.
fn baseline_problems(case: &Case) -> Vec<String> {
    let blueprint = template::blueprint(case.request);
    let resource = &blueprint.resource;
    let mut out = Vec::new();
    for (plural, fields) in case.resources {
        if resource.name != *plural {
            out.push(format!("no {plural} (it built {})", resource.name));
            continue;
        }
        for (name, _) in *fields {
            if !resource.fields.iter().any(|f| f.name == *name) {
                out.push(format!("{plural} has no {name}"));
            }
        }
    }
    for (plural, action) in case.actions {
        let redirect = *action == "redirect" && resource.redirect.is_some();
        if !redirect {
            out.push(format!("{plural} has no {action}"));
        }
    }
    out
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let started = Instant::now();
    let mut rows = Vec::new();
    let (mut built, mut declined, mut in_range, mut out_of_range, mut base) = (0, 0, 0, 0, 0);
    for (n, case) in CASES.iter().enumerate() {
        eprintln!("{n}: {}", case.request);
        let spec = analyst::read(case.request);
        let baseline = baseline_problems(case);
        let (ours, verdict) = if case.out_of_range {
            out_of_range += 1;
            match &spec.out_of_range {
                Some(what) => {
                    declined += 1;
                    (Vec::new(), format!("declined: {what}"))
                }
                None => (vec!["built anyway".to_owned()], "built anyway".to_owned()),
            }
        } else {
            in_range += 1;
            let mut problems = problems(case, &spec);
            if problems.is_empty() {
                problems = deployed_problems(case, &spec, n).await;
            }
            if problems.is_empty() {
                built += 1;
            }
            let verdict = if problems.is_empty() {
                "every named part".to_owned()
            } else {
                problems.join("; ")
            };
            (problems, verdict)
        };
        // The template generator never declines: out of range, it built a generic API.
        let base_ok = !case.out_of_range && baseline.is_empty();
        if base_ok {
            base += 1;
        }
        rows.push(format!(
            "| {} | {} | {} | {} |",
            case.request.replace('|', "/"),
            if ours.is_empty() { "✓" } else { "✗" },
            verdict.replace('|', "/"),
            if base_ok { "✓" } else { "✗" },
        ));
    }
    println!("| request | spec → deployed | what the deployed API showed | baseline (template) |");
    println!("|---|---|---|---|");
    for row in &rows {
        println!("{row}");
    }
    println!();
    println!(
        "resource-style requests built with every named resource, field and action: {built}/{in_range} ({:.0} %); out-of-range requests declined: {declined}/{out_of_range}; baseline (template generator): {base}/{in_range} ({:.0} %), declined 0/{out_of_range}; {:.1} s",
        100.0 * built as f64 / in_range.max(1) as f64,
        100.0 * base as f64 / in_range.max(1) as f64,
        started.elapsed().as_secs_f64()
    );
}
