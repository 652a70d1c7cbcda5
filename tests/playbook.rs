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
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks");
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
        [r#"site.toml:20:13: site[1].location[0].proxy: "htp://x" is not an http or https URL"#]
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
    assert!(e[0].contains("unknown field `listen_port`"), "{e:?}");
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
    assert!(e[0].contains("invalid type"), "{e:?}");
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
    pb.resolve_hostname("localhost");
    assert_eq!(pb.sites[0].server_names, ["localhost"]);
    let mut pb = playbook::parse("default", DEFAULT_PLAYBOOK).unwrap();
    pb.resolve_hostname("web1.example.com");
    assert_eq!(pb.sites[0].server_names, ["web1.example.com", "localhost"]);
}
