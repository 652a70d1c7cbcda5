//! Playbook parsing and every validation error, with its line and column.

use portico::playbook::{self, PlaybookError, DEFAULT_PLAYBOOK};

fn errors(text: &str) -> Vec<String> {
    match playbook::parse("site.toml", text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(PlaybookError::Invalid(p)) => p.to_string().lines().map(String::from).collect(),
        Err(e) => panic!("unexpected error {e}"),
    }
}

const BASE: &str = r#"version = 1

[[certificate]]
name = "main"
source = "self-signed"

[[site]]
server_names = ["a.example.com"]
certificate = "main"

[[site.location]]
path = "/"
proxy = "http://127.0.0.1:3000"
"#;

#[test]
fn the_embedded_default_is_valid() {
    let pb = playbook::parse("default", DEFAULT_PLAYBOOK).unwrap();
    assert_eq!(pb.sites.len(), 1);
    assert_eq!(pb.sites[0].server_names, ["{hostname}", "localhost"]);
}

#[test]
fn a_minimal_playbook_parses_with_defaults() {
    let pb = playbook::parse("site.toml", BASE).unwrap();
    assert_eq!(pb.firewall.ports, None);
    assert_eq!(pb.firewall_ports(), [80, 443]);
    assert_eq!(pb.sites[0].listen, 443);
    assert_eq!(pb.sites[0].redirect_code, 301);
}

#[test]
fn the_firewall_opens_every_site_port_unless_ports_are_listed() {
    let mtls = std::fs::read_to_string("playbooks/mtls-api.toml").unwrap();
    let pb = playbook::parse("mtls-api.toml", &mtls).unwrap();
    assert_eq!(pb.firewall_ports(), [80, 8443]);
    let two = BASE.replace("version = 1", "version = 1\n[firewall]\nports = [443]");
    assert_eq!(
        playbook::parse("site.toml", &two).unwrap().firewall_ports(),
        [443]
    );
    let extra = format!(
        "{BASE}\n[[site]]\nserver_names = [\"b.example.com\"]\ncertificate = \"main\"\nlisten = 8443\n[[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:3001\"\n"
    );
    assert_eq!(
        playbook::parse("site.toml", &extra)
            .unwrap()
            .firewall_ports(),
        [80, 443, 8443]
    );
}

#[test]
fn every_seed_playbook_is_valid() {
    let dir = support::fixtures::repo("playbooks");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            playbook::load_file(&path).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert_eq!(n, 4, "the four seed playbooks");
}

#[test]
fn a_bad_proxy_url_is_named_with_its_line_and_column() {
    let text = format!(
        "{BASE}\n[[site]]\nserver_names = [\"b.example.com\"]\ncertificate = \"main\"\n[[site.location]]\npath = \"/\"\n    proxy = \"htp://x\"\n"
    );
    assert_eq!(
        errors(&text),
        [
            r#"site.toml:20:13: site[1].location[0].proxy: "htp://x" is not an http or https URL: it must start with http:// or https://"#
        ]
    );
}

#[test]
fn an_unknown_field_is_an_error_at_that_field() {
    let text = BASE.replace(
        "certificate = \"main\"\n\n[[site.location]]",
        "certificate = \"main\"\nlisten_port = 8443\n\n[[site.location]]",
    );
    let e = errors(&text);
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("site.toml:10:1: site[0]"), "{e:?}");
    assert!(e[0].contains("unknown key `listen_port`"), "{e:?}");
}

#[test]
fn a_wrong_type_is_an_error_at_the_value() {
    let text = BASE.replace(
        "source = \"self-signed\"",
        "source = \"self-signed\"\ndays = \"ten\"",
    );
    let e = errors(&text);
    assert!(
        e[0].starts_with("site.toml:6:8: certificate[0].days: "),
        "{e:?}"
    );
    assert!(
        e[0].contains(
            "expected a whole number from 0 to 4294967295, found a string of 3 characters"
        ),
        "{e:?}"
    );
}

#[test]
fn an_unknown_enum_value_lists_the_choices() {
    let text = BASE.replace("source = \"self-signed\"", "source = \"letsencrypt\"");
    let e = errors(&text);
    assert!(
        e[0].starts_with("site.toml:5:10: certificate[0].source: "),
        "{e:?}"
    );
    assert!(e[0].contains("self-signed"), "{e:?}");
}

#[test]
fn a_toml_syntax_error_has_a_position() {
    let e = errors("version = 1\n[[site]\n");
    assert!(e[0].starts_with("site.toml:2:"), "{e:?}");
}

#[test]
fn an_unknown_certificate_is_reported_at_the_reference() {
    let text = BASE.replace("certificate = \"main\"", "certificate = \"mian\"");
    assert_eq!(
        errors(&text),
        [
            r#"site.toml:9:15: site[0].certificate: unknown certificate "mian"; define it in a [[certificate]]"#
        ]
    );
}

#[test]
fn duplicate_server_names_are_reported_on_the_second_site() {
    let text = format!("{BASE}\n[[site]]\nserver_names = [\"b.example.com\", \"A.example.com\"]\ncertificate = \"main\"\n[[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:3001\"\n");
    assert_eq!(
        errors(&text),
        [
            r#"site.toml:16:34: site[1].server_names[1]: duplicate server name "A.example.com": site[0] already serves it on port 443"#
        ]
    );
}

#[test]
fn ports_out_of_range_are_reported() {
    let text = BASE.replace(
        "version = 1\n",
        "version = 1\n[firewall]\nports = [80, 70000]\n",
    );
    assert_eq!(
        errors(&text),
        ["site.toml:3:14: firewall.ports[1]: port 70000 is out of range (1-65535)"]
    );
    let text = BASE.replace(
        "certificate = \"main\"\n\n",
        "certificate = \"main\"\nlisten = 0\n\n",
    );
    assert_eq!(
        errors(&text),
        ["site.toml:10:10: site[0].listen: port 0 is out of range (1-65535)"]
    );
}

#[test]
fn an_acme_certificate_needs_the_terms_agreed() {
    let text = BASE.replace("source = \"self-signed\"", "source = \"acme\"")
        + "\n[acme]\nemail = \"ops@example.com\"\n";
    assert_eq!(
        errors(&text),
        [
            r#"site.toml:5:10: certificate[0].source: an ACME certificate needs [acme] agree_terms = true (read the CA's terms of service first)"#
        ]
    );
    let ok = BASE.replace("source = \"self-signed\"", "source = \"acme\"")
        + "\n[acme]\nemail = \"ops@example.com\"\nagree_terms = true\n";
    playbook::parse("site.toml", &ok).unwrap();
}

#[test]
fn references_to_unknown_cas_and_oauth2_are_reported() {
    let text = BASE.replace(
        "certificate = \"main\"\n\n",
        "certificate = \"main\"\noauth2 = \"sso\"\nclient_auth = { ca = \"clients\" }\n\n",
    );
    let e = errors(&text);
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e.iter()
            .any(|l| l
                .starts_with("site.toml:11:22: site[0].client_auth.ca: unknown ca \"clients\"")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|l| l.starts_with("site.toml:10:10: site[0].oauth2: unknown oauth2 \"sso\"")),
        "{e:?}"
    );
}

#[test]
fn several_problems_are_all_reported_at_once() {
    let text = BASE
        .replace("version = 1", "version = 2")
        .replace("path = \"/\"", "path = \"api\"")
        .replace("[\"a.example.com\"]", "[\"bad_name!\"]");
    let e = errors(&text);
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(e[0].contains("version: unsupported version 2"), "{e:?}");
}

#[test]
fn require_client_cert_needs_client_auth() {
    let text = BASE.replace(
        "proxy = \"http://127.0.0.1:3000\"",
        "proxy = \"http://127.0.0.1:3000\"\nrequire_client_cert = true",
    );
    assert_eq!(
        errors(&text),
        ["site.toml:14:23: site[0].location[0].require_client_cert: needs client_auth on the site"]
    );
}

#[test]
fn hostname_placeholder_is_resolved_and_deduplicated() {
    let mut pb = playbook::parse("default", DEFAULT_PLAYBOOK).unwrap();
    pb.resolve_hostname("localhost", "/etc/hostname").unwrap();
    assert_eq!(pb.sites[0].server_names, ["localhost"]);
    let mut pb = playbook::parse("default", DEFAULT_PLAYBOOK).unwrap();
    pb.resolve_hostname("web1.example.com", "/etc/hostname")
        .unwrap();
    assert_eq!(pb.sites[0].server_names, ["web1.example.com", "localhost"]);
}

/// A playbook with one site using every kind of name, for the injection
/// table: each case replaces one line and must be refused at its field.
const FULL: &str = r#"version = 1
[acme]
agree_terms = true
webroot = "/var/lib/portico/acme-challenge"
[[ca]]
name = "clients"
[[oauth2]]
name = "sso"
upstream = "http://127.0.0.1:4180"
[[certificate]]
name = "main"
source = "self-signed"
[[certificate]]
name = "given"
source = "files"
cert_file = "/etc/given/cert.pem"
key_file = "/etc/given/key.pem"
[[site]]
name = "app"
server_names = ["a.example.com"]
certificate = "main"
oauth2 = "sso"
[site.client_auth]
ca = "clients"
verify_header = "X-SSL-Client-Verify"
[[site.location]]
path = "/api/"
proxy = "http://127.0.0.1:3000/"
"#;

#[test]
fn the_full_playbook_is_valid() {
    playbook::parse("site.toml", FULL).unwrap();
}

#[test]
fn every_string_that_reaches_a_file_name_or_a_directive_is_validated() {
    let cases: &[(&str, &str, &str)] = &[
        // (line in FULL, its hostile replacement, the field named)
        ("name = \"app\"", "name = \"app\\nserver { listen 81; }\"", "site[0].name"),
        ("name = \"app\"", "name = \"../../etc/cron.d/x\"", "site[0].name"),
        ("name = \"app\"", "name = \"a/b\"", "site[0].name"),
        ("name = \"app\"", "name = \"a;b\"", "site[0].name"),
        ("name = \"main\"", "name = \"..\"", "certificate[0].name"),
        ("name = \"main\"", "name = \".\"", "certificate[0].name"),
        ("name = \"main\"", "name = \"../x\"", "certificate[0].name"),
        ("name = \"clients\"", "name = \".\"", "ca[0].name"),
        ("name = \"clients\"", "name = \".hidden\"", "ca[0].name"),
        ("name = \"sso\"", "name = \"s o\"", "oauth2[0].name"),
        ("server_names = [\"a.example.com\"]", "server_names = [\"a.example.com;\"]", "site[0].server_names[0]"),
        ("server_names = [\"a.example.com\"]", "server_names = [\"a.example.com\\n\"]", "site[0].server_names[0]"),
        ("path = \"/api/\"", "path = \"/api/; return 200\"", "site[0].location[0].path"),
        ("path = \"/api/\"", "path = \"/api/#\"", "site[0].location[0].path"),
        ("path = \"/api/\"", "path = \"/api/$x\"", "site[0].location[0].path"),
        ("path = \"/api/\"", "path = \"/api/{\"", "site[0].location[0].path"),
        ("path = \"/api/\"", "path = \"/a\\\"b/\"", "site[0].location[0].path"),
        ("proxy = \"http://127.0.0.1:3000/\"", "proxy = \"http://127.0.0.1:3000/$host/\"", "site[0].location[0].proxy"),
        ("proxy = \"http://127.0.0.1:3000/\"", "proxy = \"http://127.0.0.1:3000/?x=/\"", "site[0].location[0].proxy"),
        ("proxy = \"http://127.0.0.1:3000/\"", "proxy = \"http://127.0.0.1:3000/#/\"", "site[0].location[0].proxy"),
        ("proxy = \"http://127.0.0.1:3000/\"", "proxy = \"http://127.0.0.1:3000\\\\/\"", "site[0].location[0].proxy"),
        ("proxy = \"http://127.0.0.1:3000/\"", "proxy = \"http://127.0.0.1:0/\"", "site[0].location[0].proxy"),
        ("proxy = \"http://127.0.0.1:3000/\"", "proxy = \"http://127.0.0.1:65536/\"", "site[0].location[0].proxy"),
        ("proxy = \"http://127.0.0.1:3000/\"", "proxy = \"http://user@127.0.0.1/\"", "site[0].location[0].proxy"),
        ("proxy = \"http://127.0.0.1:3000/\"", "proxy = \"http://127.0.0.1:3000/x;/\"", "site[0].location[0].proxy"),
        ("upstream = \"http://127.0.0.1:4180\"", "upstream = \"http://127.0.0.1:4180;\"", "oauth2[0].upstream"),
        ("upstream = \"http://127.0.0.1:4180\"", "upstream = \"http://127.0.0.1:4180/prefix\"", "oauth2[0].upstream"),
        ("webroot = \"/var/lib/portico/acme-challenge\"", "webroot = \"/var/www; include /etc/shadow\"", "acme.webroot"),
        ("webroot = \"/var/lib/portico/acme-challenge\"", "webroot = \"/var/www/../../etc\"", "acme.webroot"),
        ("webroot = \"/var/lib/portico/acme-challenge\"", "webroot = \"var/www\"", "acme.webroot"),
        ("cert_file = \"/etc/given/cert.pem\"", "cert_file = \"/etc/given/cert.pem; ssl_verify_client off\"", "certificate[1].cert_file"),
        ("key_file = \"/etc/given/key.pem\"", "key_file = \"/etc/given/{key}.pem\"", "certificate[1].key_file"),
        ("verify_header = \"X-SSL-Client-Verify\"", "verify_header = \"X-Verify: SUCCESS\"", "site[0].client_auth.verify_header"),
        ("verify_header = \"X-SSL-Client-Verify\"", "verify_header = \"Host\"", "site[0].client_auth.verify_header"),
        ("verify_header = \"X-SSL-Client-Verify\"", "verify_header = \"X-Auth-Request-User\"", "site[0].client_auth.verify_header"),
        ("upstream = \"http://127.0.0.1:4180\"", "upstream = \"http://127.0.0.1:4180\"\nheaders = { \"X-Forwarded-For\" = \"user\" }", "oauth2[0].headers.X-Forwarded-For"),
        ("upstream = \"http://127.0.0.1:4180\"", "upstream = \"http://127.0.0.1:4180\"\nheaders = { \"X-Auth-Request-User\" = \"email\" }", "oauth2[0].headers.X-Auth-Request-User"),
        ("upstream = \"http://127.0.0.1:4180\"", "upstream = \"http://127.0.0.1:4180\"\nheaders = { \"X-Token\" = \"access-token\" }", "oauth2[0].headers.X-Token"),
        ("upstream = \"http://127.0.0.1:4180\"", "upstream = \"http://127.0.0.1:4180\"\nheaders = { \"X-A b\" = \"user\" }", "oauth2[0].headers.X-A b"),
        ("version = 1", "version = 1\n[proxy]\ntrusted_proxies = [\"10.0.0.0/33\"]", "proxy.trusted_proxies[0]"),
        ("version = 1", "version = 1\n[proxy]\ntrusted_proxies = [\"10.0.0.0/8; allow all\"]", "proxy.trusted_proxies[0]"),
        ("version = 1", "version = 1\n[proxy]\nclear_headers = [\"Host\"]", "proxy.clear_headers[0]"),
        ("version = 1", "version = 1\n[proxy]\nclear_headers = [\"X-A: b\"]", "proxy.clear_headers[0]"),
        ("version = 1", "version = 1\n[proxy]\nbackend_ca = \"/etc/ca.pem;\"", "proxy.backend_ca"),
        // Locations nginx would never match as written: their requests
        // would fall to another location, unprotected.
        ("path = \"/api/\"", "path = \"/private%20area/\"", "site[0].location[0].path"),
        ("path = \"/api/\"", "path = \"/a//admin/\"", "site[0].location[0].path"),
        ("path = \"/api/\"", "path = \"/b/../secret/\"", "site[0].location[0].path"),
        ("path = \"/api/\"", "path = \"/./api/\"", "site[0].location[0].path"),
        // The renewal daemon may write to the webroot.
        ("webroot = \"/var/lib/portico/acme-challenge\"", "webroot = \"/\"", "acme.webroot"),
        ("webroot = \"/var/lib/portico/acme-challenge\"", "webroot = \"/srv\"", "acme.webroot"),
        ("webroot = \"/var/lib/portico/acme-challenge\"", "webroot = \"/etc/nginx\"", "acme.webroot"),
        // An operator's file inside portico's own directories would go
        // with `remove --purge`.
        ("cert_file = \"/etc/given/cert.pem\"", "cert_file = \"/etc/ssl/portico/mine.pem\"", "certificate[1].cert_file"),
        ("key_file = \"/etc/given/key.pem\"", "key_file = \"/var/lib/portico/mine.key\"", "certificate[1].key_file"),
        ("agree_terms = true", "agree_terms = true\nca_root = \"/var/lib/portico/ca.pem\"", "acme.ca_root"),
    ];
    for (line, hostile, field) in cases {
        assert!(FULL.contains(line), "{line} is not in the playbook");
        let text = FULL.replacen(line, hostile, 1);
        let errs = errors(&text);
        assert!(
            errs.iter().any(|e| e.contains(&format!(" {field}: "))),
            "{hostile:?}: want an error at {field}, got {errs:?}"
        );
    }
}

#[test]
fn a_prefix_and_its_backend_path_must_agree_on_the_trailing_slash() {
    let bad = FULL.replace("path = \"/api/\"", "path = \"/x\"");
    let errs = errors(&bad);
    assert!(
        errs.iter().any(|e| e.contains("site[0].location[0].proxy")
            && e.contains("/x/foo would reach the backend as //foo")),
        "{errs:?}"
    );
    let bad = FULL.replace(
        "proxy = \"http://127.0.0.1:3000/\"",
        "proxy = \"http://127.0.0.1:3000/app\"",
    );
    let errs = errors(&bad);
    assert!(
        errs.iter()
            .any(|e| e.contains("/api/foo would reach the backend as /appfoo")),
        "{errs:?}"
    );
    // Both with a slash, both without, or no path on the backend: fine.
    for ok in [
        "http://127.0.0.1:3000/app/",
        "http://127.0.0.1:3000",
        "http://[::1]:3000/",
    ] {
        let text = FULL.replace("http://127.0.0.1:3000/", ok);
        playbook::parse("site.toml", &text).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    let text = FULL
        .replace("path = \"/api/\"", "path = \"/x\"")
        .replace("http://127.0.0.1:3000/", "http://127.0.0.1:3000/y");
    playbook::parse("site.toml", &text).unwrap();
}

#[test]
fn serving_port_80_is_refused_for_a_site_with_client_certificates() {
    let text = FULL.replace(
        "oauth2 = \"sso\"\n[site.client_auth]",
        "oauth2 = \"sso\"\nhttp = \"serve\"\n[site.client_auth]",
    );
    let errs = errors(&text);
    assert!(
        errs.iter().any(|e| e.contains(
            "site[0].http: http = \"serve\" would serve this site's locations on port 80"
        )),
        "{errs:?}"
    );
}

/// Two sites in a playbook built from name/server-name/backend triples.
fn two_sites(a: (&str, &str, &str), b: (&str, &str, &str)) -> String {
    let mut s =
        String::from("version = 1\n[[certificate]]\nname = \"c\"\nsource = \"self-signed\"\n");
    for (name, server, backend) in [a, b] {
        s.push_str("[[site]]\n");
        if !name.is_empty() {
            s.push_str(&format!("name = \"{name}\"\n"));
        }
        s.push_str(&format!(
            "server_names = [\"{server}\"]\ncertificate = \"c\"\n[[site.location]]\npath = \"/\"\nproxy = \"{backend}\"\n"
        ));
    }
    s
}

#[test]
fn two_sites_that_would_share_a_file_or_an_upstream_are_refused() {
    let up = "http://127.0.0.1:3000";
    // The wildcard's files are portico-wildcard.example.com.*.
    let errs = errors(&two_sites(
        ("", "*.example.com", up),
        ("wildcard.example.com", "w.example.com", up),
    ));
    assert!(
        errs.iter().any(|e| e.contains(
            "site[1].name: site[0] already writes the files portico-wildcard.example.com"
        )),
        "{errs:?}"
    );
    // Case does not make two files on every filesystem, nor two names in nginx.
    let errs = errors(&two_sites(
        ("App.example.com", "a.example.com", up),
        ("app.example.com", "b.example.com", up),
    ));
    assert!(errs.iter().any(|e| e.contains("site[1].name")), "{errs:?}");
    // a-b and a.b fold to the same upstream name for the same backend.
    let errs = errors(&two_sites(
        ("", "a-b.example.com", up),
        ("", "a.b-example.com", up),
    ));
    assert!(
        errs.iter().any(|e| e.contains("site[1].location[0].proxy: its nginx upstream would be named portico_a_b_example_com_127_0_0_1_3000")),
        "{errs:?}"
    );
    // Names that fold to one nginx identifier are refused whatever the
    // backends (the path guard and session cache are named after them).
    let errs = errors(&two_sites(
        ("", "a-b.example.com", up),
        ("", "a.b-example.com", "http://127.0.0.1:3001"),
    ));
    assert!(
        errs.iter().any(|e| {
            e.contains(
            "site[1].server_names[0]: site[0]'s name folds to the same nginx name (a_b_example_com)"
        )
        }),
        "{errs:?}"
    );
    // A site name and a backend can still fold together across sites.
    let errs = errors(&two_sites(
        ("a-b", "x.example.com", "http://c:1"),
        ("a", "y.example.com", "http://b-c:1"),
    ));
    assert!(
        errs.iter()
            .any(|e| e.contains("its nginx upstream would be named portico_a_b_c_1")),
        "{errs:?}"
    );
}

#[test]
fn the_host_name_is_validated_where_it_is_used_and_named_by_its_file() {
    for bad in [
        "web1\nserver { listen 81; }",
        "web1;",
        "../etc",
        "web_1",
        "-web",
        "",
    ] {
        let mut pb = playbook::parse("default", DEFAULT_PLAYBOOK).unwrap();
        let err = pb
            .resolve_hostname(bad, "/etc/hostname")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/etc/hostname: "), "{bad:?}: {err}");
        assert!(err.contains("cannot stand for {hostname}"), "{err}");
        assert!(
            !err.contains('\n'),
            "the name is quoted, never printed raw: {err}"
        );
    }
    // Not used: nothing to validate.
    let mut pb = playbook::parse("site.toml", BASE).unwrap();
    pb.resolve_hostname("web_1", "/etc/hostname").unwrap();
    // Used, and clashing with another site once resolved.
    let text = format!(
        "{BASE}\n[[site]]\nserver_names = [\"{{hostname}}\"]\ncertificate = \"main\"\n[[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:3001\"\n"
    );
    let mut pb = playbook::parse("site.toml", &text).unwrap();
    let err = pb
        .resolve_hostname("a.example.com", "/etc/hostname")
        .unwrap_err()
        .to_string();
    assert!(err.contains("site[1]"), "{err}");
}

#[test]
fn many_problems_are_located_correctly() {
    let mut text =
        String::from("version = 1\n[[certificate]]\nname = \"c\"\nsource = \"self-signed\"\n");
    for i in 0..2000 {
        text.push_str(&format!(
            "[[site]]\nserver_names = [\"s{i}.example\"]\ncertificate = \"c\"\nredirect_code = 302\n[[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:3000\"\n"
        ));
    }
    let errs = errors(&text);
    assert_eq!(errs.len(), 2000);
    for (i, e) in errs.iter().enumerate() {
        let line = 4 + 7 * i + 4;
        assert_eq!(
            e,
            &format!("site.toml:{line}:17: site[{i}].redirect_code: 302 is not 301 or 308")
        );
    }
}

#[test]
fn a_name_served_on_two_https_ports_clashes_on_port_80() {
    let text = format!(
        "{BASE}\n[[site]]\nserver_names = [\"a.example.com\"]\ncertificate = \"main\"\nlisten = 8443\n[[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:3001\"\n"
    );
    let errs = errors(&text);
    assert!(
        errs.iter().any(|e| e.contains(
            "site[1].server_names[0]: duplicate server name \"a.example.com\": site[0] already serves it on port 80 (every site answers its names on port 80"
        )),
        "{errs:?}"
    );
}

#[test]
fn wildcards_for_acme_certificates_are_refused_where_they_are_written() {
    let acme = BASE
        .replace("source = \"self-signed\"", "source = \"acme\"")
        .replace(
            "version = 1\n",
            "version = 1\n[acme]\nemail = \"ops@example.com\"\nagree_terms = true\n",
        );
    // Named by a site using the certificate.
    let text = acme.replace(
        "[\"a.example.com\"]",
        "[\"a.example.com\", \"*.example.com\"]",
    );
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with(
            "site.toml:11:34: site[0].server_names[1]: \"*.example.com\" is a wildcard"
        ),
        "{e:?}"
    );
    assert!(e[0].contains("challenge = \"dns-01\""), "{e:?}");
    // Named by the certificate itself.
    let text = acme.replace(
        "name = \"main\"\n",
        "name = \"main\"\nnames = [\"*.example.com\"]\n",
    );
    let e = errors(&text);
    assert!(
        e[0].contains("certificate[0].names[0]: \"*.example.com\" is a wildcard"),
        "{e:?}"
    );
    // A self-signed wildcard is fine.
    let text = BASE.replace("[\"a.example.com\"]", "[\"*.example.com\"]");
    assert!(playbook::parse("site.toml", &text).is_ok());
}

/// BASE with an ACME certificate over DNS-01 through `[[dns]]` `dns`.
fn dns01(dns: &str) -> String {
    BASE.replace(
        "source = \"self-signed\"",
        "source = \"acme\"\nchallenge = \"dns-01\"\ndns = \"ns\"",
    )
    .replace(
        "[\"a.example.com\"]",
        "[\"a.example.com\", \"*.example.com\"]",
    )
    .replace(
        "version = 1\n",
        &format!("version = 1\n[acme]\nagree_terms = true\n\n{dns}\n"),
    )
}

const RFC2136: &str = r#"[[dns]]
name = "ns"
provider = "rfc2136"
server = "192.0.2.53:53"
zone = "example.com"
key_name = "portico"
algorithm = "hmac-sha256"
secret_file = "/etc/portico/tsig.key"
"#;

#[test]
fn a_wildcard_over_dns01_is_valid_with_either_provider() {
    let pb = playbook::parse("site.toml", &dns01(RFC2136)).unwrap();
    assert_eq!(pb.dns.len(), 1);
    assert_eq!(
        pb.certificates[0].source.challenge().unwrap().name(),
        "dns-01"
    );
    let hook = "[[dns]]\nname = \"ns\"\nprovider = \"hook\"\npresent = [\"/usr/local/bin/dns\", \"add\"]\ncleanup = [\"/usr/local/bin/dns\", \"del\"]\n";
    playbook::parse("site.toml", &dns01(hook)).unwrap();
    // The defaults: port 53, found zone, hmac-sha256.
    let short = "[[dns]]\nname = \"ns\"\nprovider = \"rfc2136\"\nserver = \"192.0.2.53\"\nkey_name = \"k\"\nsecret_file = \"/etc/portico/tsig.key\"\n";
    playbook::parse("site.toml", &dns01(short)).unwrap();
}

#[test]
fn dns_providers_are_checked_field_by_field() {
    for (from, to, expected) in [
        (
            "server = \"192.0.2.53:53\"",
            "server = \"ns.example.com\"",
            "dns[0].server: \"ns.example.com\" is not an IP address",
        ),
        (
            "algorithm = \"hmac-sha256\"",
            "algorithm = \"hmac-md5\"",
            "dns[0].algorithm: \"hmac-md5\" is not a TSIG algorithm",
        ),
        (
            "secret_file = \"/etc/portico/tsig.key\"",
            "secret_file = \"tsig.key\"",
            "dns[0].secret_file: \"tsig.key\" is not an absolute path",
        ),
        (
            "zone = \"example.com\"",
            "zone = \"exa mple\"",
            "dns[0].zone: \"exa mple\" is not a DNS name",
        ),
        (
            "key_name = \"portico\"",
            "key_name = \"a b\"",
            "dns[0].key_name: \"a b\" is not a TSIG key name",
        ),
        (
            "name = \"ns\"\nprovider",
            "name = \"../ns\"\nprovider",
            "dns[0].name: \"../ns\" is not a valid name",
        ),
        (
            "zone = \"example.com\"",
            "propagation_timeout = 0",
            "dns[0].propagation_timeout: 0 seconds is out of range",
        ),
        (
            "zone = \"example.com\"",
            "resolver = \"localhost\"",
            "dns[0].resolver: \"localhost\" is not an IP address",
        ),
        (
            "zone = \"example.com\"",
            "present = [\"/bin/true\"]",
            "present is only used with provider = \"hook\"",
        ),
        (
            "secret_file = \"/etc/portico/tsig.key\"",
            "",
            "provider = \"rfc2136\" needs secret_file",
        ),
    ] {
        let text = dns01(&RFC2136.replace(from, to));
        let e = errors(&text).join("\n");
        assert!(e.contains(expected), "{from} -> {to}: {e}");
    }
    let e = errors(&dns01(&RFC2136.replace("192.0.2.53:53", "192.0.2.53:0"))).join("\n");
    assert!(
        e.contains("dns[0].server: \"192.0.2.53:0\" is not an IP address or IP:PORT"),
        "{e}"
    );
    let ip = dns01(RFC2136).replace("dns = \"ns\"", "dns = \"ns\"\nnames = [\"192.0.2.7\"]");
    let e = errors(&ip).join("\n");
    assert!(
        e.contains(
            "certificate[0].names[0]: \"192.0.2.7\" is an IP address, which DNS-01 cannot validate"
        ),
        "{e}"
    );
    // The hook's argv: an absolute program, no shell string.
    let hook = "[[dns]]\nname = \"ns\"\nprovider = \"hook\"\npresent = [\"dns add\"]\ncleanup = []\nserver = \"192.0.2.1\"\n";
    let e = errors(&dns01(hook)).join("\n");
    assert!(
        e.contains("server is only used with provider = \"rfc2136\""),
        "{e}"
    );
    let hook =
        "[[dns]]\nname = \"ns\"\nprovider = \"hook\"\npresent = [\"dns add\"]\ncleanup = []\n";
    let e = errors(&dns01(hook)).join("\n");
    assert!(
        e.contains(
            "dns[0].present[0]: \"dns\" (and the rest, not shown) is not a usable program path"
        ),
        "{e}"
    );
    assert!(e.contains("dns[0].cleanup: is empty"), "{e}");
}

#[test]
fn dns01_fields_belong_to_acme_and_name_a_provider() {
    let e = errors(&dns01(
        &RFC2136.replace("name = \"ns\"", "name = \"other\""),
    ))
    .join("\n");
    assert!(e.contains("certificate[0].dns: unknown dns \"ns\""), "{e}");
    let no_dns = dns01(RFC2136).replace("dns = \"ns\"\n", "");
    let e = errors(&no_dns).join("\n");
    assert!(
        e.contains("challenge = \\\"dns-01\\\" needs dns = \\\"NAME\\\"")
            || e.contains("needs dns = \"NAME\""),
        "{e}"
    );
    let http_with_dns = dns01(RFC2136).replace("challenge = \"dns-01\"", "challenge = \"http-01\"");
    let e = errors(&http_with_dns).join("\n");
    assert!(
        e.contains("dns is only used with challenge = \"dns-01\""),
        "{e}"
    );
    let self_signed = BASE.replace(
        "source = \"self-signed\"",
        "source = \"self-signed\"\nchallenge = \"dns-01\"",
    );
    let e = errors(&self_signed).join("\n");
    assert!(
        e.contains("challenge is only used with source = \"acme\""),
        "{e}"
    );
}
