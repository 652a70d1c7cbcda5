//! DNS-01 wildcard issuance: portico against lego 4.9 (`--dns rfc2136`)
//! and certbot 2.1 with certbot-dns-rfc2136 (Debian packages), on the same
//! pebble and the same BIND, in the same run, inside one booted machine:
//! `sudo cargo bench --bench dns01`. Each client updates BIND with the
//! same TSIG key and waits for the records its own way.

use support::machine;

use machine::bind::{start_bind, DNS_RFC2136};
use machine::pebble::pebble_machine;

use support::bench::{breakdown, ms, stats};

const RUNS: usize = 5;

fn main() {
    let m = pebble_machine(&[]);
    let key = start_bind(&m);
    let at = key.find("secret \"").unwrap() + "secret \"".len();
    let secret = &key[at..at + key[at..].find('"').unwrap()];
    // lego and certbot check the CA's certificate against the system store.
    m.ok(&[
        "cp",
        "/etc/pebble/ca.pem",
        "/usr/local/share/ca-certificates/pebble-listener.crt",
    ]);
    m.ok(&["update-ca-certificates"]);
    m.ok(&[
        "apt-get",
        "install",
        "-y",
        "-q",
        "nginx",
        "lego",
        "certbot",
        "python3-certbot-dns-rfc2136",
    ]);
    m.write(
        "/root/wild.toml",
        &format!(
            "version = 1\n[firewall]\nbackend = \"none\"\n[acme]\ndirectory = \"https://127.0.0.1:14000/dir\"\n\
             ca_root = \"/etc/pebble/ca.pem\"\nemail = \"ops@bench.test\"\nagree_terms = true\n\n{DNS_RFC2136}\n\
             [[certificate]]\nname = \"wild\"\nsource = \"acme\"\nchallenge = \"dns-01\"\ndns = \"bind\"\n\n\
             [[site]]\nserver_names = [\"example.test\", \"*.example.test\"]\ncertificate = \"wild\"\n\
             [[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:3000\"\n"
        ),
    );

    // portico: the first apply (account, order, config, daemon), then
    // renewals of the wildcard, with and without writing and reloading.
    let p_first = ms(&m, "portico apply /root/wild.toml");
    m.ok(&["systemctl", "stop", "portico"]); // the bench drives renewals itself
    let p_acme = stats(
        (0..RUNS)
            .map(|_| ms(&m, "portico renew --force --dry-run /root/wild.toml"))
            .collect(),
    );
    let p_full = stats(
        (0..RUNS)
            .map(|_| ms(&m, "portico renew --force /root/wild.toml"))
            .collect(),
    );
    breakdown(
        &m,
        "wildcard issuance over DNS-01, ACME and DNS only",
        "portico -v renew --force --dry-run /root/wild.toml",
        0.3,
    );

    // lego with its defaults (it checks the authoritative servers, every
    // 2 s, after a first look at once).
    let lego = format!(
        "RFC2136_NAMESERVER=127.0.0.1:53 RFC2136_TSIG_KEY=portico. RFC2136_TSIG_SECRET={secret} \
         RFC2136_TSIG_ALGORITHM=hmac-sha256. lego --accept-tos --email ops@bench.test \
         --server https://127.0.0.1:14000/dir --dns rfc2136 --dns.resolvers 127.0.0.1:53 \
         --key-type ec256 --path /root/lego --domains example.test --domains '*.example.test' run"
    );
    ms(&m, &lego); // registers the account
    let l_next = stats(
        (0..RUNS)
            .map(|_| {
                m.ok(&["rm", "-rf", "/root/lego/certificates"]);
                ms(&m, &lego)
            })
            .collect(),
    );

    // certbot: its plugin sleeps a fixed time for propagation (60 s by
    // default) and checks nothing; measured with the default once, and
    // with the smallest sleep it takes.
    m.write(
        "/root/rfc2136.ini",
        &format!(
            "dns_rfc2136_server = 127.0.0.1\ndns_rfc2136_port = 53\ndns_rfc2136_name = portico\n\
             dns_rfc2136_secret = {secret}\ndns_rfc2136_algorithm = HMAC-SHA256\n"
        ),
    );
    m.ok(&["chmod", "0600", "/root/rfc2136.ini"]);
    let certbot = |sleep: &str| {
        format!(
            "certbot certonly --non-interactive --agree-tos -m ops@bench.test --server https://127.0.0.1:14000/dir \
             --key-type ecdsa --dns-rfc2136 --dns-rfc2136-credentials /root/rfc2136.ini {sleep} \
             -d example.test -d '*.example.test' --force-renewal"
        )
    };
    let quick = "--dns-rfc2136-propagation-seconds 1";
    ms(&m, &certbot(quick)); // registers the account
    let c_quick = stats((0..RUNS).map(|_| ms(&m, &certbot(quick))).collect());
    let c_default = ms(&m, &certbot(""));

    println!(
        "\nDNS-01 wildcard (example.test + *.example.test) against pebble 2.4.0 and BIND 9.18 on loopback, \
         one booted machine, same run ({RUNS} runs where a median is given)"
    );
    println!("{:<56} {:>10}   ratio (other / portico)", "", "ms");
    let line = |label: &str, v: f64, anchor: Option<f64>| {
        let ratio = anchor.map_or(String::new(), |p| format!("{:.1}x", v / p));
        println!("{label:<56} {v:>10.0}   {ratio}");
    };
    line(
        "portico, first apply (account, order, config, daemon)",
        p_first,
        None,
    );
    line(
        "portico, wildcard issuance, median (ACME + DNS only)",
        p_acme.0,
        None,
    );
    line("portico, wildcard issuance, worst", p_acme.1, None);
    line(
        "portico, incl. writing, nginx -t and reload, median",
        p_full.0,
        None,
    );
    line("lego 4.9 --dns rfc2136, median", l_next.0, Some(p_acme.0));
    line("lego 4.9 --dns rfc2136, worst", l_next.1, Some(p_acme.1));
    line(
        "certbot 2.1 dns-rfc2136, propagation-seconds 1, median",
        c_quick.0,
        Some(p_acme.0),
    );
    line(
        "certbot 2.1 dns-rfc2136, its default (60 s sleep)",
        c_default,
        Some(p_acme.0),
    );
    let fastest = l_next.0.min(c_quick.0);
    println!(
        "the faster of the others (median) / portico (median): {:.1}x (goal: at least 5x)",
        fastest / p_acme.0
    );
}
