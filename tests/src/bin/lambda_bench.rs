//! Lambda-level benchmarks of the release binaries, run by `make bench`:
//!
//! - cold start: exec of the binary → its first poll of the Lambda Runtime
//!   API, with config, SDK clients and secrets (from moto's Secrets Manager)
//!   loaded as in production; and the first invocation's latency after it;
//! - memory: peak RSS (VmHWM) of a webhook binary after N invocations.
//!
//! Write units and dollars per event are `make cost` (`src/bin/cost.rs`).
//!
//! Needs moto at AWS_ENDPOINT_URL and `cargo build --release` binaries.
//! Prints its figures; it is a measurement, not a test.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use switchboard_providers::registry::{self, Descriptor};
use switchboard_tests::runtime::{signed_api_event, Outcome, RuntimeApi, PUBLIC_BASE_URL};
use switchboard_tests::{
    distinct, fixture, keys, lambda_env, moto_endpoint, provision_only, root, unique,
};

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A distinct, authentic API Gateway event for `provider`, number `n`: its
/// first seed with its ids made unique, signed with the current test key.
fn event(d: &Descriptor, run: &str, n: usize) -> Value {
    let body = distinct(&fixture(d.name(), d.fixtures[0]), &format!("{run}-{n}"));
    signed_api_event(d, &body, &format!("{run}-{n}"))
}

/// Whether the function stored a new event: 200 with `"status": "accepted"`.
fn accepted(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Response(r) => {
            let body: Value =
                serde_json::from_str(r["body"].as_str().unwrap_or_default()).unwrap_or_default();
            r["statusCode"] == 200 && body["status"] == "accepted"
        }
        Outcome::Error(_) => false,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// CPU time a process has used so far, over all its threads, exited ones
/// included: its POSIX process CPU clock (`clock_getcpuclockid`, ns
/// precision; per-thread `/proc` figures would lose a thread that has
/// finished). Unlike the wall clock it leaves out waiting (for moto's answer,
/// for a core), so it shows what init itself costs on a noisy machine.
/// `None` where the kernel does not expose it.
fn cpu_time(pid: u32) -> Option<Duration> {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).ok()?);
    let clock = nix::time::ClockId::pid_cpu_clock_id(pid).ok()?;
    Some(Duration::from(nix::time::clock_gettime(clock).ok()?))
}

/// The median of CPU times, or "n/a" if any could not be read.
fn cpu_p50(times: &[Option<Duration>]) -> String {
    let mut times: Vec<Duration> = match times.iter().copied().collect::<Option<_>>() {
        Some(times) => times,
        None => return "n/a".into(),
    };
    if times.is_empty() {
        return "n/a".into();
    }
    times.sort();
    ms(percentile(&times, 0.5))
}

fn peak_rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM")
}

#[tokio::main]
async fn main() -> Result<()> {
    let cold_runs = env_number("BENCH_COLD_RUNS", 30);
    let invocations = env_number("BENCH_INVOCATIONS", 1000);
    let release = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
        .join("release");
    let (_sdk, provisioned) = provision_only().await;
    let env_of = |binary: &str| -> Result<HashMap<String, String>> {
        let mut env = lambda_env(&provisioned.functions, binary);
        for (name, value) in registry::all().flat_map(|d| d.local_settings(PUBLIC_BASE_URL)) {
            env.insert(name.into(), value);
        }
        env.insert("AWS_LAMBDA_LOG_LEVEL".into(), "WARN".into());
        // Straight to moto: the limits proxy's extra hop is not what Lambda pays.
        env.insert("AWS_ENDPOINT_URL".into(), moto_endpoint());
        Ok(env)
    };

    println!("== cold start: exec → first Runtime API poll (config, SDK clients, secret fetch), then the first invocation");
    println!("   {cold_runs} runs each; release binaries; AWS on loopback (moto, plain HTTP: no TLS handshake is measured)");
    println!("   init CPU: the process's CPU time (all threads) at its first poll; unlike the wall clock, no waiting (for moto, for a core)");
    println!(
        "{:<20} {:>12} {:>12} {:>12} {:>13} {:>16} {:>16}",
        "function",
        "init p50",
        "init p90",
        "init min",
        "init CPU p50",
        "1st invoke p50",
        "1st invoke p90"
    );
    let mut worst_init_p50 = Duration::ZERO;
    for d in registry::all() {
        let function = d.function;
        let binary = release.join(function);
        if !binary.exists() {
            bail!(
                "{} is not built: cargo build --release -p {function}",
                binary.display()
            );
        }
        let env = env_of(function)?;
        let (mut inits, mut cpus, mut firsts) = (Vec::new(), Vec::new(), Vec::new());
        for n in 0..cold_runs {
            let mut api = RuntimeApi::start().await;
            let started = Instant::now();
            api.spawn(&binary, function, &env);
            let ready = api.wait_ready().await;
            inits.push(ready - started);
            cpus.push(api.pid().and_then(cpu_time));
            let event = event(d, &unique("c"), n);
            let sent = Instant::now();
            let outcome = api.invoke(&event).await;
            firsts.push(sent.elapsed());
            if !accepted(&outcome) {
                bail!("{function}: first invocation answered {outcome:?}");
            }
        }
        inits.sort();
        firsts.sort();
        worst_init_p50 = worst_init_p50.max(percentile(&inits, 0.5));
        println!(
            "{:<20} {:>12} {:>12} {:>12} {:>13} {:>16} {:>16}",
            function,
            ms(percentile(&inits, 0.5)),
            ms(percentile(&inits, 0.9)),
            ms(inits[0]),
            cpu_p50(&cpus),
            ms(percentile(&firsts, 0.5)),
            ms(percentile(&firsts, 0.9))
        );
    }
    println!(
        "cold start (init) median, worst webhook: {} (target ≤ 10 ms)",
        ms(worst_init_p50)
    );

    // Control: the same init with the keys inline (no Secrets Manager call),
    // to show what the one secret fetch costs.
    let control = registry::all().next().context("a provider")?;
    let function = control.function;
    let mut env = env_of(function)?;
    env.remove(control.credentials.secret);
    env.insert(
        control.credentials.inline.into(),
        keys::current(control.provider).configured.clone(),
    );
    let (mut inits, mut cpus) = (Vec::new(), Vec::new());
    for _ in 0..cold_runs {
        let mut api = RuntimeApi::start().await;
        let started = Instant::now();
        api.spawn(&release.join(function), function, &env);
        inits.push(api.wait_ready().await - started);
        cpus.push(api.pid().and_then(cpu_time));
    }
    inits.sort();
    println!(
        "control: {function} init with inline keys (no secret fetch): p50 {}, p90 {}, min {}, init CPU p50 {}",
        ms(percentile(&inits, 0.5)),
        ms(percentile(&inits, 0.9)),
        ms(inits[0]),
        cpu_p50(&cpus)
    );

    println!();
    println!("== memory: peak RSS (VmHWM) after {invocations} invocations of distinct events");
    let mut worst_rss = 0;
    for d in registry::all() {
        let function = d.function;
        let mut api = RuntimeApi::start().await;
        api.spawn(&release.join(function), function, &env_of(function)?);
        api.wait_ready().await;
        let run = unique("m");
        let started = Instant::now();
        for n in 0..invocations {
            let outcome = api.invoke(&event(d, &run, n)).await;
            if !accepted(&outcome) {
                bail!("{function}: invocation {n} answered {outcome:?}");
            }
        }
        let elapsed = started.elapsed();
        let rss = peak_rss_kib(api.pid().context("pid")?)?;
        worst_rss = worst_rss.max(rss);
        println!(
            "{:<20} peak RSS {:>6.1} MiB   mean invocation {} (round trip through the emulator and moto)",
            function,
            rss as f64 / 1024.0,
            ms(elapsed / invocations as u32)
        );
    }
    println!(
        "peak RSS, worst webhook: {:.1} MiB (target ≤ 32 MB)",
        worst_rss as f64 / 1024.0
    );

    Ok(())
}
