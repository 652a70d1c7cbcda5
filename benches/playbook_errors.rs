//! Locating the problems of a big invalid playbook, against the anchor of
//! parsing the same text with the TOML parser alone, in the same run:
//! `cargo bench --bench playbook_errors`.
//!
//! Every site has one problem (a redirect code that is not 301 or 308), so
//! the work is validating and locating N problems. Linear work keeps the
//! ratio to the parse flat as N doubles; before portico 0.2 each problem
//! rescanned the text for its line, and 20 000 sites took 25 s.

use std::time::{Duration, Instant};

fn playbook(sites: usize) -> String {
    let mut s =
        String::from("version = 1\n[[certificate]]\nname = \"c\"\nsource = \"self-signed\"\n");
    for i in 0..sites {
        s.push_str(&format!(
            "[[site]]\nserver_names = [\"s{i}.example\"]\ncertificate = \"c\"\nredirect_code = 302\n\
             [[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:3000\"\n"
        ));
    }
    s
}

fn median(mut f: impl FnMut(), runs: usize) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn main() {
    println!(
        "{:>7}  {:>12}  {:>16}  {:>6}",
        "sites", "TOML parse", "portico, located", "ratio"
    );
    for sites in [2_500, 5_000, 10_000, 20_000] {
        let text = playbook(sites);
        let parse = median(
            || {
                let _: toml::Table = toml::from_str(&text).unwrap();
            },
            5,
        );
        let located = median(
            || {
                let err = portico::playbook::parse("big.toml", &text).unwrap_err();
                assert!(err.to_string().lines().count() == sites);
            },
            5,
        );
        println!(
            "{sites:>7}  {:>10.1?}  {:>16.1?}  {:>5.1}x",
            parse,
            located,
            located.as_secs_f64() / parse.as_secs_f64()
        );
    }
}
