//! portico against certbot and uacme (Debian packages) on the same pebble, in
//! the same run, inside one booted machine: `sudo cargo bench --bench acme`.
//! Times are measured inside the machine (date +%s%N around the command).

use support::machine;

use machine::pebble::pebble_machine;
use machine::Machine;

use support::bench::{breakdown, ms, rss, stats};

const RUNS: usize = 10;

/// How many certificates the mass renewal orders from portico
/// (`PORTICO_BENCH_MASS`, default 1,000), and from certbot and uacme each
/// (`PORTICO_BENCH_MASS_OTHERS`, default 100: they order one at a time).
fn mass_sizes() -> (usize, usize) {
    let get = |var: &str, default: usize| {
        std::env::var(var).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{var}={v}: not a number of certificates"))
        })
    };
    (
        get("PORTICO_BENCH_MASS", 1000),
        get("PORTICO_BENCH_MASS_OTHERS", 100),
    )
}

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
    let (mass_portico, mass_others) = mass_sizes();
    let mass_names: Vec<String> = (1..=mass_portico.max(mass_others))
        .map(|i| format!("m{i}.test"))
        .collect();
    // One hosts line per 50 names: the names resolve here like b*.test.
    let mut hosts = std::fs::read_to_string(m.root().join("etc/hosts")).unwrap();
    for chunk in mass_names.chunks(50) {
        hosts.push_str(&format!("127.0.0.1 {}\n", chunk.join(" ")));
    }
    m.write("/etc/hosts", &hosts);
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
        mass(&m, &mass_names[..mass_portico], None);
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
    // Without a terminal certbot sleeps up to 8 minutes at random before
    // renewing (to spread cron jobs over the CA): that is waiting, not work.
    let c_renew = "certbot renew --non-interactive --no-random-sleep-on-renew";
    let c_idle = stats((0..3).map(|_| ms(&m, c_renew)).collect());
    let c_forced = stats(
        (0..1)
            .map(|_| ms(&m, &format!("{c_renew} --force-renewal")))
            .collect(),
    );
    let c_rss_idle = rss(&m, c_renew);

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
    mass(
        &m,
        &mass_names[..mass_portico],
        Some(&mass_names[..mass_others]),
    );
}

/// Seconds and orders per second of `n` orders that took `ms`.
fn rate(n: usize, ms: f64) -> String {
    format!("{:>8.1} s {:>7.1}/s", ms / 1000.0, n as f64 / (ms / 1000.0))
}

/// One client's row of the mass table, printed as soon as it is measured
/// (a later client's failure keeps it); its forced renewals per second.
fn mass_row(who: &str, n: usize, first: f64, forced: f64, how: &str) -> f64 {
    println!(
        "{who:<8} {n:>6} {:>20} {:>20}   {how}",
        rate(n, first),
        rate(n, forced)
    );
    n as f64 / (forced / 1000.0)
}

/// The mass issuance and forced renewal: portico orders every name in
/// `names` (its first `apply` of them, then `renew --force`); certbot and
/// uacme order `others` (when given) in their own directories, one process
/// per certificate for the first issuance as an operator's loop would.
fn mass(m: &Machine, names: &[String], others: Option<&[String]>) {
    m.ok(&["portico", "remove", "--purge"]);
    m.write("/root/mass.toml", &playbook(names));
    let n = names.len();
    let p_first = ms(m, "portico apply /root/mass.toml");
    m.ok(&["systemctl", "stop", "portico"]); // the bench drives renewals itself
    let p_forced = ms(m, "portico renew --force /root/mass.toml");
    // GNU time's peak is the largest of the process and the children it
    // waited for: with the write, that is `nginx -t` on 1,000 TLS servers
    // (about 105 MiB, see benches/nginx_floor.sh). The dry run's is
    // portico's own: every order, no write, no nginx.
    let p_rss = rss(m, "portico renew --force /root/mass.toml");
    let p_rss_own = rss(m, "portico renew --force --dry-run /root/mass.toml");
    println!("\nMass issuance and forced renewal against the same pebble (pebble reuses some valid authorizations, alike for all three)");
    println!(
        "{:<8} {:>6} {:>20} {:>20}   how",
        "", "certs", "first issuance", "forced renewal"
    );
    let p_rate = mass_row(
        "portico",
        n,
        p_first,
        p_forced,
        "one apply (incl. nginx -t, reloads, daemon); renew --force",
    );
    println!("(peak RSS of portico's forced renewal of {n}: {p_rss_own:.1} Mi its own, in a dry run; {p_rss:.1} Mi with its children, nginx -t the largest)");
    let Some(others) = others else {
        return;
    };
    let k = others.len();
    let cb = "certbot --non-interactive --agree-tos -m ops@bench.test --server https://127.0.0.1:14000/dir \
              --config-dir /root/cbm/etc --work-dir /root/cbm/work --logs-dir /root/cbm/log";
    let first: Vec<String> = others
        .iter()
        .map(|name| {
            format!("{cb} certonly --key-type ecdsa --webroot -w /var/lib/portico/acme-challenge -d {name}")
        })
        .collect();
    let c_first = ms(m, &first.join(" && "));
    let c_forced = ms(
        m,
        &format!("{cb} renew --no-random-sleep-on-renew --force-renewal"),
    );
    let c_rate = mass_row(
        "certbot",
        k,
        c_first,
        c_forced,
        "certonly per name; renew --force-renewal",
    );
    let ua = "UACME_CHALLENGE_PATH=/var/lib/portico/acme-challenge/.well-known/acme-challenge uacme -y -o -t EC \
              -a https://127.0.0.1:14000/dir -c /root/uacm -h /usr/share/uacme/uacme.sh";
    m.ok(&["sh", "-c", &format!("{ua} new ops@bench.test")]);
    let issue: Vec<String> = others.iter().map(|n| format!("{ua} issue {n}")).collect();
    let u_first = ms(m, &issue.join(" && "));
    // uacme's forced reissue trips over its own backup link within the
    // same second (see above): the certificates go, the account stays.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    m.ok(&["sh", "-c", "rm -rf /root/uacm/m*.test"]);
    let u_forced = ms(m, &issue.join(" && "));
    let u_rate = mass_row("uacme", k, u_first, u_forced, "issue per name, twice");
    println!(
        "portico's forced renewals per second: certbot's {:.1}x, uacme's {:.1}x",
        p_rate / c_rate,
        p_rate / u_rate
    );
}
