//! The firewall on freshly booted Debian 12 machines, as operators harden
//! them by hand: iptables and ip6tables with a DROP policy, and native
//! nftables from nftables.service. After one `portico apply` the site's
//! ports are open in every family, and still open after the machine is
//! powered off and booted again (tests/machine: same root, new boot).
#![cfg(feature = "system")]

use support::machine;
use support::report as report_json;

use machine::Machine;
use report_json::task;
use serde_json::Value;

/// The embedded default's site, the firewall left to `auto`.
fn playbook(firewall: &str) -> String {
    format!(
        "version = 1\n[firewall]\n{firewall}\n[[certificate]]\nname = \"default\"\nsource = \"self-signed\"\n\
         [[site]]\nname = \"default\"\nserver_names = [\"{{hostname}}\", \"localhost\"]\ncertificate = \"default\"\n\
         [[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:3000\"\n"
    )
}

fn apply(m: &Machine) -> Value {
    let out = m.run(&["portico", "apply", "--replace", "--json", "/root/site.toml"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    v
}

/// A host hardened with iptables and ip6tables: loopback, established
/// connections and SSH allowed, everything else dropped.
fn iptables_host() -> Machine {
    let m = Machine::boot();
    m.ok(&["apt-get", "install", "-y", "-q", "iptables"]);
    for tool in ["iptables", "ip6tables"] {
        for rule in [
            "-A INPUT -i lo -j ACCEPT",
            "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
            "-A INPUT -p tcp --dport 22 -j ACCEPT",
            "-P INPUT DROP",
        ] {
            let mut argv = vec![tool];
            argv.extend(rule.split(' '));
            m.ok(&argv);
        }
    }
    m
}

/// The web ports are accepted in both families, live.
fn assert_open_in_both_families(m: &Machine, when: &str) {
    for tool in ["iptables", "ip6tables"] {
        let live = m.ok(&[tool, "-S", "INPUT"]);
        for port in [80, 443] {
            let rule = format!("-A INPUT -p tcp -m tcp --dport {port} -j ACCEPT");
            assert!(
                live.lines().any(|l| l == rule),
                "{when}: {tool} lacks {rule}:\n{live}"
            );
        }
        assert!(
            live.contains("--dport 22 -j ACCEPT"),
            "{when}: {tool} lost SSH:\n{live}"
        );
    }
}

fn facts(m: &Machine) -> Value {
    serde_json::from_str(&m.ok(&["portico", "facts", "--json"])).unwrap()
}

#[test]
fn an_iptables_host_is_opened_in_both_families_and_stays_open_after_a_reboot() {
    let mut m = iptables_host();
    let f = facts(&m);
    assert_eq!(f["firewall"], "iptables");
    assert_eq!(f["firewall_families"], serde_json::json!(["ipv4", "ipv6"]));
    assert_eq!(
        f["firewall_persists"], false,
        "nothing restores rules at boot yet"
    );

    m.write("/root/site.toml", &playbook("backend = \"auto\""));
    let v = apply(&m);
    // The report says what made the rules last.
    let pkg = task(&v, "packages iptables-persistent");
    assert_eq!(pkg["status"], "changed", "{v:#}");
    let fw = task(&v, "firewall iptables 80,443");
    let changes = fw["changes"].to_string();
    for want in [
        "ip6tables: accept tcp port 80",
        "ip6tables: accept tcp port 443",
        "save the ip6tables rules to /etc/iptables/rules.v6",
        "save the iptables rules to /etc/iptables/rules.v4",
    ] {
        assert!(changes.contains(want), "{want} not in {changes}");
    }
    assert_open_in_both_families(&m, "after apply");
    assert_eq!(
        m.ok(&["systemctl", "is-enabled", "netfilter-persistent"])
            .trim(),
        "enabled"
    );
    assert_eq!(facts(&m)["firewall_persists"], true);

    m.reboot();
    assert_open_in_both_families(&m, "after a reboot");

    let again = apply(&m);
    assert_eq!(again["changed"], 0, "{again:#}");
}

#[test]
fn persist_false_leaves_boot_alone_and_says_the_ports_will_close() {
    let mut m = iptables_host();
    m.write(
        "/root/site.toml",
        &playbook("backend = \"iptables\"\npersist = false"),
    );
    let v = apply(&m);
    let warnings = v["warnings"].to_string();
    assert!(
        warnings.contains("[firewall] persist = false")
            && warnings.contains("gone after the next reboot"),
        "{v:#}"
    );
    assert_open_in_both_families(&m, "after apply");
    let installed = m.run(&["dpkg-query", "-W", "-f", "${Status}", "iptables-persistent"]);
    assert!(
        !String::from_utf8_lossy(&installed.stdout).contains("install ok installed"),
        "iptables-persistent was installed though persist = false"
    );
    // And the warning was true.
    m.reboot();
    let live = m.ok(&["iptables", "-S", "INPUT"]);
    assert!(!live.contains("--dport 80 "), "{live}");
}

/// Debian's nftables.service with a hand-written ruleset: an inet table
/// with a drop policy, and an ip table whose chain ends in an explicit drop
/// (both hook input, so both must accept the web ports).
const NFTABLES_CONF: &str = r#"#!/usr/sbin/nft -f

flush ruleset

table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept comment "loopback"
		ct state established,related accept comment "replies"
		tcp dport 22 accept comment "ssh, keep it"
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
	}
	chain output {
		type filter hook output priority filter;
	}
}

table ip legacy {
	chain input {
		type filter hook input priority 10; policy accept;
		iif "lo" accept
		tcp dport 22 accept
		counter drop comment "the rest"
	}
}
"#;

/// `nft list ruleset` without the rules portico added.
fn theirs(m: &Machine) -> String {
    m.ok(&["nft", "list", "ruleset"])
        .lines()
        .filter(|l| !l.contains("comment \"portico\""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// portico's rule in each input chain, before the explicit drop.
fn assert_nft_open(m: &Machine, when: &str) {
    let rules = m.ok(&["nft", "list", "ruleset"]);
    let ours: Vec<&str> = rules
        .lines()
        .map(str::trim)
        .filter(|l| l.contains("comment \"portico\""))
        .collect();
    assert_eq!(
        ours,
        [
            "tcp dport { 80, 443 } accept comment \"portico\"",
            "tcp dport { 80, 443 } accept comment \"portico\""
        ],
        "{when}:\n{rules}"
    );
    let legacy = &rules[rules.find("table ip legacy").unwrap()..];
    assert!(
        legacy.find("comment \"portico\"").unwrap()
            < legacy.find("drop comment \"the rest\"").unwrap(),
        "{when}: portico's rule must come before the chain's final drop:\n{legacy}"
    );
}

#[test]
fn an_nftables_host_gets_rules_of_its_own_kind_that_survive_a_reboot() {
    let mut m = Machine::boot();
    m.ok(&["apt-get", "install", "-y", "-q", "nftables"]);
    m.write("/etc/nftables.conf", NFTABLES_CONF);
    m.ok(&["systemctl", "enable", "--now", "nftables"]);
    let before = theirs(&m);
    let f = facts(&m);
    assert_eq!(f["firewall"], "nftables");
    assert_eq!(f["firewall_families"], serde_json::json!(["ipv4", "ipv6"]));

    m.write("/root/site.toml", &playbook("backend = \"auto\""));
    let v = apply(&m);
    let boot = task(&v, "file /etc/nftables.d/portico.nft");
    assert_eq!(boot["status"], "changed", "{v:#}");
    assert!(
        boot["changes"]
            .to_string()
            .contains("[one include line added]"),
        "{boot}"
    );
    assert_eq!(
        task(&v, "nft -c -f /etc/nftables.conf")["status"],
        "unchanged"
    );
    let fw = task(&v, "firewall nftables 80,443")["changes"].to_string();
    assert!(
        fw.contains(
            "nftables inet filter input: accept tcp dport { 80, 443 } under its drop policy"
        ),
        "{fw}"
    );
    assert!(
        fw.contains("nftables ip legacy input: accept tcp dport { 80, 443 } before its final drop"),
        "{fw}"
    );
    assert_nft_open(&m, "after apply");
    // Their rules and comments, and their file, as they were, but for ours.
    assert_eq!(theirs(&m), before);
    let conf = std::fs::read_to_string(m.root().join("etc/nftables.conf")).unwrap();
    assert_eq!(
        conf,
        format!(
            "{NFTABLES_CONF}# Added by portico: the ports it opens (see that file).\ninclude \"/etc/nftables.d/portico.nft\"\n"
        )
    );

    m.reboot();
    assert_nft_open(&m, "after a reboot");
    assert_eq!(theirs(&m), before, "after a reboot");

    let again = apply(&m);
    assert_eq!(again["changed"], 0, "{again:#}");
}

#[test]
fn a_boot_configuration_nft_rejects_is_rolled_back_and_nothing_is_loaded() {
    let m = Machine::boot();
    m.ok(&["apt-get", "install", "-y", "-q", "nftables"]);
    // The chain is live, but /etc/nftables.conf does not define it: at boot
    // portico's include would name a chain that does not exist.
    m.write("/etc/nftables.conf", "#!/usr/sbin/nft -f\nflush ruleset\n");
    m.ok(&["systemctl", "enable", "--now", "nftables"]);
    m.write("/root/extra.nft", "table inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\tiif \"lo\" accept\n\t}\n}\n");
    m.ok(&["nft", "-f", "/root/extra.nft"]);
    let conf_before = std::fs::read(m.root().join("etc/nftables.conf")).unwrap();
    m.write("/root/site.toml", &playbook("backend = \"nftables\""));
    let out = m.run(&["portico", "apply", "--replace", "--json", "/root/site.toml"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    let gate = task(&v, "nft -c -f /etc/nftables.conf");
    assert_eq!(gate["status"], "failed", "{v:#}");
    assert!(
        gate["reason"].as_str().unwrap().contains("rolled back"),
        "{gate}"
    );
    assert_eq!(task(&v, "firewall nftables 80,443")["status"], "skipped");
    assert_eq!(
        std::fs::read(m.root().join("etc/nftables.conf")).unwrap(),
        conf_before
    );
    assert!(!m.root().join("etc/nftables.d/portico.nft").exists());
    assert!(!m.ok(&["nft", "list", "ruleset"]).contains("portico"));
}
