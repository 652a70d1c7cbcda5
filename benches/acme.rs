//! portico against certbot and uacme (Debian packages) on the same pebble, in
//! the same run, inside one booted machine: `sudo cargo bench --bench acme`.
//! Times are measured inside the machine (date +%s%N around the command).

use support::machine;

use machine::pebble::pebble_machine;

use support::bench::{breakdown, ms, rss, stats};

const RUNS: usize = 10;

/// `PORTICO_BENCH_ONLY=portico`: skip certbot and uacme (minutes of the
/// run) while working on portico's own figures.
fn others() -> bool {
    std::env::var("PORTICO_BENCH_ONLY").as_deref() != Ok("portico")
}

fn playbook(names: &[String]) -> String {
    let mut pb = String::from(
        "version = 1\n[firewall]\nbackend = \"none\"\n[acme]\ndirectory = \"https://127.0.0.1:14000/dir\"\n\
         ca_root = \"/etc/pebble/ca.pem\"\nemail = \"ops@bench.test\"\nagree_terms = true\n\n",
    );
    for n in names {
        pb.push_str(&format!(
            "[[certificate]]\nname = \"{n}\"\nsource = \"acme\"\n[[site]]\nserver_names = [\"{n}\"]\ncertificate = \"{n}\"\n\
             [[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:3000\"\n\n"
        ));
    }
    pb
}

fn main() {
    let names: Vec<String> = (1..=11).map(|i| format!("b{i}.test")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let m = pebble_machine(&refs);
    // certbot and uacme check the CA's certificate against the system store.
    m.ok(&[
        "cp",
        "/etc/pebble/ca.pem",
        "/usr/local/share/ca-certificates/pebble-listener.crt",
    ]);
    m.ok(&["update-ca-certificates"]);
    if others() {
        m.ok(&["apt-get", "install", "-y", "-q", "certbot", "uacme", "time"]);
    } else {
        m.ok(&["apt-get", "install", "-y", "-q", "time"]);
    }
    m.write("/root/all.toml", &playbook(&names));
    m.write("/root/one.toml", &playbook(&names[..1]));
    // The first certificate is the whole `apply` on a host with nginx
    // installed and nothing of portico's: account, order, config, reloads,
    // the daemon. `remove --purge` puts the host back between runs.
    m.ok(&["apt-get", "install", "-y", "-q", "nginx"]);
    let fresh = || {
        m.ok(&["portico", "remove", "--purge"]);
    };
    let p_first = stats(
        (0..3)
            .map(|_| {
                let t = ms(&m, "portico apply /root/one.toml");
                fresh();
                t
            })
            .collect(),
    )
    .0;
    breakdown(
        &m,
        "first certificate, whole apply",
        "portico -v apply /root/one.toml",
        1.0,
    );
    fresh();
    m.ok(&["portico", "apply", "/root/all.toml"]);
    m.ok(&["systemctl", "stop", "portico"]); // the bench drives renewals itself

    let p_next = stats(
        (0..RUNS)
            .map(|_| ms(&m, "portico renew --force /root/one.toml"))
            .collect(),
    );
    // The same order without writing or reloading: the ACME part alone, which
    // is what certbot and uacme do here (neither reloads nginx in this bench).
    let p_acme = stats(
        (0..RUNS)
            .map(|_| ms(&m, "portico renew --force --dry-run /root/one.toml"))
            .collect(),
    );
    let p_idle = stats(
        (0..RUNS)
            .map(|_| ms(&m, "portico renew /root/all.toml"))
            .collect(),
    );
    let p_forced = stats(
        (0..3)
            .map(|_| ms(&m, "portico renew --force /root/all.toml"))
            .collect(),
    );
    breakdown(
        &m,
        "further issuance incl. nginx -t and reload",
        "portico -v renew --force /root/one.toml",
        0.5,
    );
    breakdown(
        &m,
        "forced renewal of 11",
        "portico -v renew --force /root/all.toml",
        5.0,
    );
    let p_rss_idle = rss(&m, "portico renew /root/all.toml");
    let p_rss_forced = rss(&m, "portico renew --force /root/all.toml");
    m.ok(&["systemctl", "start", "portico"]);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let daemon_rss = m.ok(&[
        "sh",
        "-c",
        "grep VmRSS /proc/$(systemctl show -p MainPID --value portico)/status | awk '{print $2}'",
    ]);
    let daemon_parts = m.ok(&[
        "sh",
        "-c",
        "grep -E 'RssAnon|RssFile|RssShmem|VmHWM|Threads' /proc/$(systemctl show -p MainPID --value portico)/status | tr -s ' \t\n' ' '",
    ]);
    println!(
        "\ndaemon idle, after its first renewal run: {}",
        daemon_parts.trim()
    );
    let daemon_rss: f64 = daemon_rss.trim().parse::<f64>().unwrap_or(0.0) / 1024.0;
    m.ok(&["systemctl", "stop", "portico"]);

    if !others() {
        println!("\nportico alone (PORTICO_BENCH_ONLY=portico):");
        println!("first certificate, whole apply {p_first:.0} ms; further issuance median {:.0} ms worst {:.0} ms (incl. reload median {:.0} ms worst {:.0} ms); nothing due {:.1} ms; forced 11 {:.0} ms; RSS nothing due {p_rss_idle:.1} Mi, forced {p_rss_forced:.1} Mi; daemon idle {daemon_rss:.1} Mi",
            p_acme.0, p_acme.1, p_next.0, p_next.1, p_idle.0, p_forced.0);
        return;
    }
    // certbot (webroot into the same directory nginx serves)
    let cb = |extra: &str, name: &str| {
        format!(
            "certbot certonly --non-interactive --agree-tos -m ops@bench.test --server https://127.0.0.1:14000/dir \
             --key-type ecdsa --webroot -w /var/lib/portico/acme-challenge -d {name} {extra}"
        )
    };
    let c_first = ms(&m, &cb("", "b1.test"));
    let c_next = stats(
        (0..RUNS)
            .map(|_| ms(&m, &cb("--force-renewal", "b1.test")))
            .collect(),
    );
    for n in &names[1..] {
        ms(&m, &cb("", n));
    }
    let c_idle = stats(
        (0..3)
            .map(|_| ms(&m, "certbot renew --non-interactive"))
            .collect(),
    );
    let c_forced = stats(
        (0..1)
            .map(|_| ms(&m, "certbot renew --non-interactive --force-renewal"))
            .collect(),
    );
    let c_rss_idle = rss(&m, "certbot renew --non-interactive");

    // uacme (its http-01 hook writes into the same webroot)
    let ua = "UACME_CHALLENGE_PATH=/var/lib/portico/acme-challenge/.well-known/acme-challenge uacme -y -o -t EC \
              -a https://127.0.0.1:14000/dir -c /root/uacme -h /usr/share/uacme/uacme.sh";
    ms(&m, &format!("{ua} new ops@bench.test"));
    let u_first = ms(&m, &format!("{ua} issue b1.test"));
    let u_next = stats(
        (0..RUNS)
            .map(|_| {
                // uacme's forced reissue trips over its own backup link
                // (cert-<time>.pem: "File exists") here; removing the
                // certificate directory between runs, outside the timing,
                // makes each run the same new order without -f.
                m.ok(&["sh", "-c", "rm -rf /root/uacme/b1.test"]);
                ms(&m, &format!("{ua} issue b1.test"))
            })
            .collect(),
    );
    for n in &names[1..] {
        ms(&m, &format!("{ua} issue {n}"));
    }
    // uacme exits 1 when nothing is due: count the time either way.
    let all: Vec<String> = names
        .iter()
        .map(|n| format!("{ua} issue {n} || true"))
        .collect();
    let u_idle = stats((0..3).map(|_| ms(&m, &all.join("; "))).collect());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    m.ok(&["sh", "-c", "rm -rf /root/uacme/b*.test"]);
    let all_forced: Vec<String> = names.iter().map(|n| format!("{ua} issue {n}")).collect();
    let u_forced = stats((0..1).map(|_| ms(&m, &all_forced.join(" && "))).collect());
    let u_rss = rss(&m, &format!("sh -c '{ua} issue b1.test || true'"));

    println!("\nACME against pebble 2.4.0 on loopback, one booted machine, same run ({RUNS} runs where a median is given)");
    println!(
        "{:<48} {:>12} {:>12} {:>12}   ratio (other / portico)",
        "", "portico", "certbot", "uacme"
    );
    // One table row: a label, one cell per client that has the figure, and
    // how many times portico's figure the others' are.
    let row = |label: &str, unit: &str, cells: &[Option<f64>]| {
        let shown: Vec<String> = cells
            .iter()
            .map(|c| match c {
                Some(v) if *v < 20.0 => format!("{:>10.1}{unit}", v),
                Some(v) => format!("{:>10.0}{unit}", v),
                None => format!("{:>12}", "-"),
            })
            .collect();
        let ratios: Vec<String> = match cells {
            [Some(p), rest @ ..] => rest
                .iter()
                .zip(["certbot", "uacme"])
                .filter_map(|(c, who)| c.map(|v| format!("{who} {:.1}x", v / p)))
                .collect(),
            _ => Vec::new(),
        };
        println!("{label:<48} {}   {}", shown.join(" "), ratios.join(", "));
    };
    row(
        "first certificate incl. account (whole apply)",
        "ms",
        &[Some(p_first), Some(c_first), Some(u_first)],
    );
    row(
        "further issuance, median (ACME only)",
        "ms",
        &[Some(p_acme.0), Some(c_next.0), Some(u_next.0)],
    );
    row(
        "further issuance, worst (ACME only)",
        "ms",
        &[Some(p_acme.1), Some(c_next.1), Some(u_next.1)],
    );
    // certbot and uacme do not reload nginx here; portico's full renewal does.
    row(
        "further issuance incl. nginx -t + reload, med",
        "ms",
        &[Some(p_next.0), Some(c_next.0), Some(u_next.0)],
    );
    row(
        "further issuance incl. nginx -t + reload, worst",
        "ms",
        &[Some(p_next.1), Some(c_next.1), Some(u_next.1)],
    );
    row(
        "renew, 11 certificates, nothing due (median)",
        "ms",
        &[Some(p_idle.0), Some(c_idle.0), Some(u_idle.0)],
    );
    row(
        "forced renewal of 11 certificates",
        "ms",
        &[Some(p_forced.0), Some(c_forced.0), Some(u_forced.0)],
    );
    row(
        "peak RSS of renew, nothing due",
        "Mi",
        &[Some(p_rss_idle), Some(c_rss_idle), Some(u_rss)],
    );
    row(
        "peak RSS of renew, 11 forced",
        "Mi",
        &[Some(p_rss_forced), None, None],
    );
    row("daemon idle RSS", "Mi", &[Some(daemon_rss), None, None]);
    println!("(certbot and uacme never reload nginx here: the rows with the reload compare portico's whole renewal with their issuance alone)");
}
