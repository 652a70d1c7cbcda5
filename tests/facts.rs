//! Every fact parser on fixtures of real output (tests/fixtures/).

use portico::facts::firewall::{self, Backend, Probes};
use portico::facts::nginx::{self, Layout, Version};
use portico::facts::os_release::{self, Family, PackageManager};
use portico::facts::ufw;

fn fixture(rel: &str) -> String {
    support::fixtures::text(&format!("tests/fixtures/{rel}"))
}

#[test]
fn os_release_of_every_supported_family() {
    let cases = [
        (
            "ubuntu-16.04",
            "ubuntu",
            "16.04",
            Family::Debian,
            PackageManager::Apt,
        ),
        (
            "ubuntu-22.04",
            "ubuntu",
            "22.04",
            Family::Debian,
            PackageManager::Apt,
        ),
        (
            "ubuntu-24.04",
            "ubuntu",
            "24.04",
            Family::Debian,
            PackageManager::Apt,
        ),
        (
            "debian-12",
            "debian",
            "12",
            Family::Debian,
            PackageManager::Apt,
        ),
        ("centos-7", "centos", "7", Family::Rhel, PackageManager::Yum),
        ("rocky-9", "rocky", "9.4", Family::Rhel, PackageManager::Dnf),
        (
            "alma-8",
            "almalinux",
            "8.10",
            Family::Rhel,
            PackageManager::Dnf,
        ),
        (
            "amzn-2023",
            "amzn",
            "2023",
            Family::Rhel,
            PackageManager::Dnf,
        ),
        (
            "fedora-40",
            "fedora",
            "40",
            Family::Rhel,
            PackageManager::Dnf,
        ),
    ];
    for (file, id, version, family, pm) in cases {
        let d = os_release::parse(&fixture(&format!("os-release/{file}")));
        assert_eq!(
            (d.id.as_str(), d.version.as_str(), d.family),
            (id, version, family),
            "{file}"
        );
        assert_eq!(os_release::package_manager(&d), pm, "{file}");
        assert!(d.supported, "{file} should be supported");
    }
}

#[test]
fn unknown_and_unsupported_releases_are_said_so() {
    let d = os_release::parse("ID=arch\nPRETTY_NAME=\"Arch Linux\"\n");
    assert_eq!(d.family, Family::Unknown);
    assert_eq!(os_release::package_manager(&d), PackageManager::Unknown);
    let old = os_release::parse("ID=debian\nVERSION_ID=\"9\"\n");
    assert_eq!(old.family, Family::Debian);
    assert!(!old.supported);
}

#[test]
fn nginx_v_of_debian_12() {
    let b = nginx::parse_v(&fixture("nginx/debian12-nginx-1.22.1.txt")).unwrap();
    assert_eq!(b.version, "1.22.1");
    assert_eq!(b.version(), Some(Version(1, 22, 1)));
    // nginx runs with the library it found at start, not the one it was built with.
    assert_eq!(b.openssl.as_deref(), Some("3.0.19"));
    assert!(b.http2);
    assert!(!b.http3);
    assert_eq!(b.conf_path.as_deref(), Some("/etc/nginx/nginx.conf"));
    assert!(nginx::parse_v("bash: nginx: command not found").is_none());
}

#[test]
fn versions_compare_numerically() {
    assert!(Version::parse("1.25.1").unwrap() > Version::parse("1.9.15").unwrap());
    assert_eq!(Version::parse("3.0.19"), Some(Version(3, 0, 19)));
    assert_eq!(Version::parse("1.26"), Some(Version(1, 26, 0)));
}

#[test]
fn nginx_layout_from_the_tree_or_the_family() {
    assert_eq!(nginx::layout(true, true, false), Layout::SitesEnabled);
    assert_eq!(nginx::layout(false, true, true), Layout::ConfD);
    assert_eq!(nginx::layout(false, false, true), Layout::SitesEnabled);
    assert_eq!(nginx::layout(false, false, false), Layout::ConfD);
}

#[test]
fn firewall_backends_from_captured_output() {
    let ufw_on = ufw::enabled(&fixture("firewall/ufw-conf-enabled.conf"));
    let ufw_off = ufw::enabled(&fixture("firewall/ufw-conf-disabled.conf"));
    let ipt_ufw = fixture("firewall/iptables-under-ufw.txt");
    let ipt_rules = fixture("firewall/iptables-rules.txt");
    let ipt_empty = fixture("firewall/iptables-empty.txt");
    let nft_drop = fixture("firewall/nft-json-hardened.json");
    let nft_end_drop = fixture("firewall/nft-json-end-drop.json");
    let nft_empty = fixture("firewall/nft-json-empty.json");
    let nft_flushed = fixture("firewall/nft-json-iptables-flushed.json");
    let fwd_on = fixture("firewall/firewalld-running.txt");
    let fwd_off = fixture("firewall/firewalld-not-running.txt");

    assert!(ufw_on);
    assert!(!ufw_off);
    assert!(firewall::iptables_in_use(&ipt_rules));
    assert!(!firewall::iptables_in_use(&ipt_empty));
    assert!(firewall::nftables_guards_input(&nft_drop));
    assert!(firewall::nftables_guards_input(&nft_end_drop));
    assert!(!firewall::nftables_guards_input(&nft_empty));
    // iptables-nft leaves an empty chain behind after a flush: not in use.
    assert!(!firewall::nftables_guards_input(&nft_flushed));

    let probe = |ufw, fwd, ipt, nft| {
        firewall::active_backend(&Probes {
            ufw_active: ufw,
            firewalld_state: fwd,
            iptables_rules: ipt,
            nft_json: nft,
            nftables_service: true,
        })
    };
    // ufw fills iptables with its own chains: ufw is still the one in charge.
    assert_eq!(probe(ufw_on, None, Some(&ipt_ufw), None), Backend::Ufw);
    assert_eq!(
        probe(ufw_off, Some(&fwd_on), Some(&ipt_empty), None),
        Backend::Firewalld
    );
    assert_eq!(
        probe(ufw_off, Some(&fwd_off), Some(&ipt_rules), None),
        Backend::Iptables
    );
    assert_eq!(
        probe(false, None, Some(&ipt_empty), Some(&nft_drop)),
        Backend::Nftables
    );
    // The same ruleset, not loaded by nftables.service.
    let unmanaged = firewall::active_backend(&Probes {
        iptables_rules: Some(&ipt_empty),
        nft_json: Some(&nft_drop),
        nftables_service: false,
        ..Probes::default()
    });
    assert_eq!(unmanaged, Backend::NftablesUnmanaged);
    assert_eq!(
        probe(ufw_off, Some(&fwd_off), Some(&ipt_empty), Some(&nft_empty)),
        Backend::None
    );
    assert_eq!(probe(false, None, None, None), Backend::None);
}

#[test]
fn ufw_rules_from_its_files_as_ufw_itself_lists_them() {
    use std::collections::BTreeSet;
    assert!(ufw::allowed(&fixture("firewall/ufw-user-empty.rules")).is_empty());
    assert!(ufw::allowed(&fixture("firewall/ufw-user6-empty.rules")).is_empty());
    // The rules of ufw-show-added-many.txt, as user.rules keeps them. Open
    // to everyone over TCP: 22/tcp, 'Nginx Full' (80, 443), a bare 8443
    // (tcp and udp), a commented 8080, the range 6000:6007, the list
    // 7000,7001, 'Nginx HTTP' and a rate limit (2222: let in, at a rate).
    // Not: a source network (9000), one interface (8081), deny (25), udp
    // (53), outgoing (9999), one destination address (8444).
    let want: BTreeSet<u16> = [22, 80, 443, 8443, 8080, 7000, 7001, 2222]
        .into_iter()
        .chain(6000..=6007)
        .collect();
    let v4 = fixture("firewall/ufw-user-many.rules");
    let v6 = fixture("firewall/ufw-user6-many.rules");
    assert_eq!(ufw::allowed(&v4), want);
    assert_eq!(ufw::allowed(&v6), want);
    assert_eq!(
        ufw::verdict(&v4, 25),
        ufw::Verdict::Denied("deny 25/tcp".into())
    );
    assert_eq!(ufw::verdict(&v4, 9000), ufw::Verdict::NoRule);
    // As many rules as `ufw show added` lists, each once.
    let listed = fixture("firewall/ufw-show-added-many.txt")
        .lines()
        .filter(|l| l.starts_with("ufw "))
        .count();
    assert_eq!(ufw::tuples(&v4).len(), listed);

    let state = |v6: &str, ipv6: bool| ufw::Ufw {
        installed: true,
        enabled: true,
        ipv6,
        v4: v4.clone(),
        v6: v6.to_string(),
    };
    // A port open for IPv4 only is not open where ufw keeps IPv6 rules too.
    let v6_without_443 = v6.replace("allow tcp 80,443 ::/0", "allow tcp 80 ::/0");
    assert!(!state(&v6_without_443, true).allowed().contains(&443));
    assert!(state(&v6_without_443, false).allowed().contains(&443));
    assert!(state(&v6, true).allowed().contains(&443));
    // Only exactly `ufw allow PORT/tcp` is portico's own rule: not the app
    // profile, the bare port, the commented one or the limited one.
    let s = state(&v6, true);
    assert!(s.has_plain_allow_tcp(22));
    for theirs in [80, 443, 8443, 8080, 2222, 9000] {
        assert!(!s.has_plain_allow_tcp(theirs), "{theirs}");
    }
}

#[test]
fn firewalld_services_and_ports_are_one_set() {
    use std::collections::BTreeSet;
    // `firewall-cmd --list-services` / `--list-ports` print space-separated words
    // (firewall-cmd(1)); the defaults of the public zone are transcribed here.
    let open = firewall::firewalld_open(
        "cockpit dhcpv6-client ssh\n",
        "8080/tcp 5000-5002/tcp 53/udp\n",
    );
    assert_eq!(open, BTreeSet::from([22, 8080, 5000, 5001, 5002]));
    assert_eq!(
        firewall::firewalld_open("http https", ""),
        BTreeSet::from([80, 443])
    );
    assert_eq!(firewall::firewalld_service(443), Some("https"));
    assert_eq!(firewall::firewalld_service(8443), None);
}

#[test]
fn ssh_port_from_sshd_t_then_config_then_22() {
    // `sshd -T` prints its effective configuration in lowercase, one key per line.
    let sshd_t = "port 2222\naddressfamily any\nlistenaddress [::]:2222\n";
    assert_eq!(firewall::ssh_ports(Some(sshd_t), Some("Port 22\n")), [2222]);
    assert_eq!(
        firewall::ssh_ports(None, Some("# Port 22\nPort 2200\n")),
        [2200]
    );
    assert_eq!(firewall::ssh_ports(None, Some("#Port 22\n")), [22]);
    assert_eq!(firewall::ssh_ports(None, None), [22]);
}

#[test]
fn default_servers_outside_portico_from_nginx_dumps() {
    use portico::facts::nginx_conf::{default_sockets, Family};
    // Debian: the default site claims port 80 in both families.
    let debian = fixture("nginx/debian12-nginx-T.txt");
    assert_eq!(
        default_sockets(&debian),
        [(Family::V4, 80), (Family::V6, 80)].into()
    );
    // EL 8/9: the server in nginx.conf has no default_server, and conf.d
    // comes first: portico's catch-all takes port 80.
    let el = format!(
        "# configuration file /etc/nginx/nginx.conf:\n{}",
        fixture("nginx/rocky9-nginx.conf")
    );
    assert!(default_sockets(&el).is_empty());
    // CentOS 7's EPEL package still said default_server.
    let el7 = el.replace("listen       80;", "listen       80 default_server;");
    assert_eq!(default_sockets(&el7), [(Family::V4, 80)].into());
    // portico's own files never count, so a second apply sees the same.
    let ours = format!(
        "{debian}# configuration file /etc/nginx/conf.d/portico-default-server.conf:\n\
         # Managed by portico: changes here are overwritten by the next `portico apply`.\n\
         server {{\n    listen 443 ssl default_server;\n    return 444;\n}}\n"
    );
    assert_eq!(default_sockets(&ours), default_sockets(&debian));
    // A user's own catch-all on 443 is left alone.
    let theirs = ours.replace("# Managed by portico: changes here", "# mine");
    assert!(default_sockets(&theirs).contains(&(Family::V4, 443)));
}
