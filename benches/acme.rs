//! portico against certbot and uacme (Debian packages) on the same pebble, in
//! the same run, inside one booted machine: `sudo cargo bench --bench acme`.
//! Times are measured inside the machine (date +%s%N around the command).

#[path = "../tests/machine/mod.rs"]
mod machine;

use machine::pebble::pebble_machine;
use machine::Machine;

const RUNS: usize = 10;

/// Wall time of `cmd` inside the machine, in ms; panics when it fails.
fn ms(m: &Machine, cmd: &str) -> f64 {
    let script = format!("s=$(date +%s%N); {cmd} >/tmp/bench.out 2>&1 || {{ cat /tmp/bench.out >&2; exit 1; }}; e=$(date +%s%N); echo $(( (e - s) / 1000 ))");
    let out = m.ok(&["sh", "-c", &script]);
    out.trim().parse::<f64>().unwrap() / 1000.0
}

/// Peak RSS of `cmd` in MiB (GNU time).
fn rss(m: &Machine, cmd: &str) -> f64 {
    let out = m.ok(&[
        "sh",
        "-c",
        &format!("/usr/bin/time -f %M {cmd} 2>&1 >/dev/null | tail -1"),
    ]);
    out.trim().parse::<f64>().unwrap_or(0.0) / 1024.0
}

fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[v.len() - 1])
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
    m.ok(&["apt-get", "install", "-y", "-q", "certbot", "uacme", "time"]);
    m.write("/root/all.toml", &playbook(&names));
    m.write("/root/one.toml", &playbook(&names[..1]));
    m.ok(&["portico", "apply", "/root/all.toml"]);
    m.ok(&["systemctl", "stop", "portico"]); // the bench drives renewals itself

    // portico
    m.ok(&[
        "sh",
        "-c",
        "rm -rf /var/lib/portico/acme /etc/ssl/portico/certs/b1.test.crt",
    ]);
    let p_first = ms(&m, "portico renew /root/one.toml");
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
    let p_rss_idle = rss(&m, "portico renew /root/all.toml");
    let p_rss_forced = rss(&m, "portico renew --force /root/all.toml");
    m.ok(&["systemctl", "start", "portico"]);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let daemon_rss = m.ok(&[
        "sh",
        "-c",
        "grep VmRSS /proc/$(systemctl show -p MainPID --value portico)/status | awk '{print $2}'",
    ]);
    let daemon_rss: f64 = daemon_rss.trim().parse::<f64>().unwrap_or(0.0) / 1024.0;
    m.ok(&["systemctl", "stop", "portico"]);

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

    println!("ACME against pebble 2.4.0 on loopback, one booted machine, same run ({RUNS} runs where a median is given)");
    println!(
        "{:<44} {:>12} {:>12} {:>12}",
        "", "portico", "certbot", "uacme"
    );
    // One table row: a label and one cell per client that has the figure.
    let row = |label: &str, unit: &str, cells: &[Option<f64>]| {
        let cells: Vec<String> = cells
            .iter()
            .map(|c| match c {
                Some(v) if *v < 20.0 => format!("{:>10.1}{unit}", v),
                Some(v) => format!("{:>10.0}{unit}", v),
                None => format!("{:>12}", "-"),
            })
            .collect();
        println!("{label:<44} {}", cells.join(" "));
    };
    row(
        "first issuance incl. account",
        "ms",
        &[Some(p_first), Some(c_first), Some(u_first)],
    );
    row(
        "further issuance, median",
        "ms",
        &[Some(p_acme.0), Some(c_next.0), Some(u_next.0)],
    );
    row(
        "further issuance, worst",
        "ms",
        &[Some(p_acme.1), Some(c_next.1), Some(u_next.1)],
    );
    // certbot and uacme do not reload nginx here; portico's full renewal does.
    row(
        "  portico incl. nginx -t + reload, median",
        "ms",
        &[Some(p_next.0), None, None],
    );
    row(
        "  portico incl. nginx -t + reload, worst",
        "ms",
        &[Some(p_next.1), None, None],
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
    println!(
        "ratios (other / portico): further issuance (no reload) certbot {:.1}x, uacme {:.1}x; nothing due certbot {:.0}x, uacme {:.0}x; forced 11 certbot {:.1}x, uacme {:.1}x",
        c_next.0 / p_acme.0, u_next.0 / p_acme.0, c_idle.0 / p_idle.0, u_idle.0 / p_idle.0, c_forced.0 / p_forced.0, u_forced.0 / p_forced.0
    );
}
