//! The edge, attacked. Every combination of the port-80 mode, where oauth2
//! applies and client certificates, rendered by portico and served by real
//! nginx (tests/support/served.rs: private mount and network namespaces).
//! On every port, every location is asked without credentials and with
//! forged identity headers: nothing protected may reach a backend, and no
//! forged identity may reach one either. With credentials, every location
//! answers (so the test also fails when the edge blocks too much).
#![cfg(feature = "system")]

use support::served;

use std::path::Path;

use portico::host::Root;
use portico::playbook::{self, PlaybookError};
use served::{Answer, Served};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Http {
    Redirect,
    Serve,
}

/// Where oauth2 applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OAuth {
    /// `oauth2` on the site: every location.
    Site,
    /// `oauth2` on the `/secret/` location only.
    Location,
    /// On the site, with `oauth2 = "none"` on `/other/`.
    NoneOverride,
}

/// Client certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cert {
    Off,
    /// `verify = "optional"`, `/cert/` with `require_client_cert`.
    Optional,
    /// `verify = "on"`: the handshake needs one.
    On,
}

const LOCATIONS: [&str; 4] = ["/", "/secret/", "/other/", "/cert/"];

fn playbook(http: Http, oauth: OAuth, cert: Cert) -> String {
    let mut s = String::from(
        r#"version = 1
[[ca]]
name = "clients"
[[oauth2]]
name = "sso"
upstream = "http://127.0.0.1:4180"
[[certificate]]
name = "edge"
source = "self-signed"
[[site]]
server_names = ["site.test"]
certificate = "edge"
"#,
    );
    s.push_str(match http {
        Http::Redirect => "http = \"redirect\"\n",
        Http::Serve => "http = \"serve\"\n",
    });
    if oauth != OAuth::Location {
        s.push_str("oauth2 = \"sso\"\n");
    }
    match cert {
        Cert::Off => {}
        Cert::Optional => s.push_str("client_auth = { ca = \"clients\", verify = \"optional\" }\n"),
        Cert::On => s.push_str("client_auth = { ca = \"clients\", verify = \"on\" }\n"),
    }
    for path in LOCATIONS {
        s.push_str(&format!(
            "[[site.location]]\npath = \"{path}\"\nproxy = \"http://127.0.0.1:3000\"\n"
        ));
        if path == "/secret/" && oauth == OAuth::Location {
            s.push_str("oauth2 = \"sso\"\n");
        }
        if path == "/other/" && oauth == OAuth::NoneOverride {
            s.push_str("oauth2 = \"none\"\n");
        }
        if path == "/cert/" && cert == Cert::Optional {
            s.push_str("require_client_cert = true\n");
        }
    }
    s
}

/// The model, written apart from the renderer: does a signed-in user need
/// to be in front of `path`?
fn needs_oauth2(oauth: OAuth, path: &str) -> bool {
    match oauth {
        OAuth::Site => true,
        OAuth::Location => path == "/secret/",
        OAuth::NoneOverride => path != "/other/",
    }
}

/// ... and a verified client certificate?
fn needs_cert(cert: Cert, path: &str) -> bool {
    match cert {
        Cert::Off => false,
        Cert::Optional => path == "/cert/",
        Cert::On => true,
    }
}

/// Headers a client sends to pose as someone, and to fake its address.
const FORGED: &[&str] = &[
    "X-Auth-Request-User: mallory",
    "X-Auth-Request-Email: mallory@evil.test",
    "X-Auth-Request-Groups: admins",
    "X-Auth-Request-Preferred-Username: mallory",
    "X-Auth-Request-Access-Token: forged",
    "X-Forwarded-User: mallory",
    "X-Forwarded-Email: mallory@evil.test",
    "X-Forwarded-Groups: admins",
    "X-Forwarded-Preferred-Username: mallory",
    "X-Forwarded-Access-Token: forged",
    "X-User: mallory",
    "X-Email: mallory@evil.test",
    "Remote-User: mallory",
    "X-Remote-User: mallory",
    "X-WEBAUTH-USER: mallory",
    "Forwarded: for=6.6.6.6",
    "X-SSL-Client-Verify: SUCCESS",
    "X-SSL-Client-DN: CN=admin",
    "X-Forwarded-For: 6.6.6.6",
    "X-Real-IP: 6.6.6.6",
    "Cookie: session=forged",
];

/// The backends answer with every identity header they got, `h=value`,
/// and oauth2-proxy's stand-in answers like oauth2-proxy: 202 and the
/// user (plus a refreshed session cookie) for `session=ok`, 401 without.
fn backends() -> String {
    let echo: String = portico::playbook::names::IDENTITY_HEADERS
        .iter()
        .chain(
            [
                "X-Forwarded-For",
                "X-Real-IP",
                "X-Forwarded-Port",
                "X-Forwarded-Host",
                "Upgrade",
                "Connection",
                "X-Tenant",
            ]
            .iter(),
        )
        .map(|h| {
            let var = h.to_ascii_lowercase().replace('-', "_");
            format!("|{}=$http_{var}", h.to_ascii_lowercase())
        })
        .collect();
    format!(
        r#"server {{
    listen 127.0.0.1:3000;
    location / {{
        default_type text/plain;
        return 200 "BACKEND uri=$request_uri|host=$http_host{echo}|END\n";
    }}
}}
server {{
    listen 127.0.0.1:4180;
    location = /oauth2/auth {{
        if ($http_cookie ~ "session=ok") {{
            add_header X-Auth-Request-User alice always;
            add_header X-Auth-Request-Email alice@example.test always;
            add_header X-Auth-Request-Groups staff always;
            add_header X-Auth-Request-Preferred-Username ali always;
            add_header X-Auth-Request-Access-Token token-of-alice always;
            add_header Set-Cookie "_oauth2_proxy=refreshed; Path=/; HttpOnly" always;
            return 202;
        }}
        return 401;
    }}
    location /oauth2/ {{
        default_type text/plain;
        return 200 "OAUTH2 uri=$request_uri xfh=$http_x_forwarded_host xff=$http_x_forwarded_for xfp=$http_x_forwarded_proto user=$http_x_auth_request_user\n";
    }}
}}
"#
    )
}

/// The value the backend echoed for header `h` ("" when not sent).
fn echoed(a: &Answer, h: &str) -> String {
    let key = format!("{}=", h.to_ascii_lowercase());
    a.body
        .split('|')
        .find_map(|field| field.strip_prefix(&key))
        .unwrap_or_else(|| panic!("no {h} in {}", a.body))
        .to_string()
}

fn reached(a: &Answer) -> bool {
    a.body.starts_with("BACKEND")
}

struct Client {
    cert: String,
    key: String,
    _dir: tempfile::TempDir,
}

/// A client certificate from the tree's CA.
fn client_cert(tree: &Path) -> Client {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(tree);
    let files = portico::tls::ca::Ca::new(&root, "clients", served::now())
        .issue("alice", 30, &Root::new("/"), dir.path())
        .unwrap();
    Client {
        cert: files.cert.display().to_string(),
        key: files.key.display().to_string(),
        _dir: dir,
    }
}

fn forged_args() -> Vec<String> {
    FORGED
        .iter()
        .flat_map(|h| ["-H".to_string(), h.to_string()])
        .collect()
}

#[test]
fn no_request_without_credentials_reaches_a_protected_backend_on_any_port() {
    served::assert_root();
    let f = served::facts(&served::host_nginx_version(), "3.0.0");
    let mut combos = 0;
    for http in [Http::Redirect, Http::Serve] {
        for oauth in [OAuth::Site, OAuth::Location, OAuth::NoneOverride] {
            for cert in [Cert::Off, Cert::Optional, Cert::On] {
                let combo = format!("{http:?}/{oauth:?}/{cert:?}");
                let text = playbook(http, oauth, cert);
                let pb = match playbook::parse("edge.toml", &text) {
                    Ok(pb) => pb,
                    Err(PlaybookError::Invalid(p)) => {
                        // Plain HTTP cannot ask for a client certificate.
                        let said = p.to_string();
                        assert!(
                            http == Http::Serve && cert != Cert::Off,
                            "{combo}: refused unexpectedly: {said}"
                        );
                        assert!(
                            said.contains("site[0].http: http = \"serve\""),
                            "{combo}: {said}"
                        );
                        continue;
                    }
                    Err(e) => panic!("{combo}: {e}"),
                };
                assert!(
                    !(http == Http::Serve && cert != Cert::Off),
                    "{combo}: serve with client certificates must be refused"
                );
                combos += 1;
                check_combo(&combo, &pb, &f, http, oauth, cert);
            }
        }
    }
    assert_eq!(combos, 12, "every combination that validates was served");
}

fn check_combo(
    combo: &str,
    pb: &playbook::Playbook,
    f: &portico::facts::Facts,
    http: Http,
    oauth: OAuth,
    cert: Cert,
) {
    let dir = served::materialize(pb, f, false);
    let client = client_cert(dir.path());
    let served = Served::start(
        dir,
        &[("/etc/nginx/conf.d/test-backends.conf", &backends())],
    );
    let resolve = [
        "--resolve",
        "site.test:443:127.0.0.1",
        "--resolve",
        "site.test:80:127.0.0.1",
    ];
    for (port, scheme) in [(80, "http"), (443, "https")] {
        for path in LOCATIONS {
            let url = format!("{scheme}://site.test{path}");
            let at = format!("{combo} {url}");
            let protected = needs_oauth2(oauth, path) || needs_cert(cert, path);
            // 1. No credentials, forged identity.
            let mut args: Vec<String> = resolve.iter().map(|s| s.to_string()).collect();
            args.extend(forged_args());
            args.push(url.clone());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let a = served.curl(&args);
            if port == 80 && http == Http::Redirect {
                assert_eq!(a.status, 301, "{at}: {a:?}");
                assert!(!reached(&a), "{at}: a redirect reached the backend");
                continue;
            }
            if protected {
                assert!(
                    !reached(&a),
                    "{at}: reached a protected backend without credentials: {a:?}"
                );
            } else {
                assert!(
                    reached(&a),
                    "{at}: an open location did not answer: {a:?}\n{}",
                    served.error_log()
                );
            }
            if reached(&a) {
                for h in portico::playbook::names::IDENTITY_HEADERS {
                    // nginx's own word on a site that asks for certificates.
                    let want = if *h == "X-SSL-Client-Verify" && cert != Cert::Off && port == 443 {
                        "NONE"
                    } else {
                        ""
                    };
                    assert_eq!(
                        echoed(&a, h),
                        want,
                        "{at}: forged {h} reached the backend: {}",
                        a.body
                    );
                }
                assert_eq!(
                    echoed(&a, "X-Forwarded-For"),
                    "127.0.0.1",
                    "{at}: {}",
                    a.body
                );
                assert_eq!(echoed(&a, "X-Real-IP"), "127.0.0.1", "{at}: {}", a.body);
            }
            if needs_oauth2(oauth, path) && !needs_cert(cert, path) {
                assert_eq!(a.status, 302, "{at}: {a:?}");
                // Back to this server's own origin, never the client's Host.
                let rd = format!("/oauth2/start?rd={scheme}://site.test{path}");
                assert!(a.headers.contains(&rd), "{at}: {a:?}");
            }
            // Other spellings of a protected path: another case, `;`
            // parameters, a backslash, double encoding. A backend that
            // reads them as the protected path must never get them.
            if protected && path != "/" {
                let stem = path.trim_end_matches('/');
                for variant in [
                    path.to_uppercase(),
                    format!("{stem};x=1/"),
                    format!("{stem}%5cx"),
                    format!("{stem}/%252e%252e/x"),
                ] {
                    let url = format!("{scheme}://site.test{variant}x");
                    let mut args: Vec<String> = resolve.iter().map(|s| s.to_string()).collect();
                    args.extend(["--path-as-is".to_string(), url.clone()]);
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    let v = served.curl(&args);
                    assert!(
                        !reached(&v),
                        "{combo} {url}: another spelling reached the backend: {v:?}"
                    );
                }
            }
            // 2. Signed in, with a client certificate: every location answers.
            let a = served.curl(&[
                resolve[0],
                resolve[1],
                resolve[2],
                resolve[3],
                "-H",
                "Cookie: session=ok",
                "-H",
                "X-Auth-Request-User: mallory",
                "--cert",
                &client.cert,
                "--key",
                &client.key,
                &url,
            ]);
            assert!(
                reached(&a),
                "{at}: with credentials: {a:?}\n{}",
                served.error_log()
            );
            let user = echoed(&a, "X-Auth-Request-User");
            if needs_oauth2(oauth, path) {
                assert_eq!(user, "alice", "{at}: {}", a.body);
                assert_eq!(echoed(&a, "X-Auth-Request-Email"), "alice@example.test");
                assert_eq!(echoed(&a, "X-Auth-Request-Groups"), "staff");
                assert_eq!(echoed(&a, "X-Auth-Request-Preferred-Username"), "ali");
                assert_eq!(
                    echoed(&a, "X-Auth-Request-Access-Token"),
                    "",
                    "{at}: not asked for"
                );
                // oauth2-proxy's session refresh reaches the client, and
                // the security headers survive the location's own add_header.
                let headers = a.headers.to_ascii_lowercase();
                assert!(
                    headers.contains("set-cookie: _oauth2_proxy=refreshed"),
                    "{at}: {a:?}"
                );
                assert!(headers.contains("x-frame-options: deny"), "{at}: {a:?}");
            } else {
                assert_eq!(user, "", "{at}: {}", a.body);
            }
            let verify = echoed(&a, "X-SSL-Client-Verify");
            match (cert, port) {
                (Cert::Off, _) => assert_eq!(verify, "", "{at}"),
                (_, 443) => assert_eq!(verify, "SUCCESS", "{at}: {}", a.body),
                _ => unreachable!("serve with client_auth is refused"),
            }
        }
    }
    // oauth2-proxy's own pages get the forwarding headers from nginx,
    // never the client's.
    let a = served.curl(&[
        resolve[0],
        resolve[1],
        "-H",
        "X-Forwarded-For: 6.6.6.6",
        "-H",
        "X-Forwarded-Host: evil.test",
        "-H",
        "X-Auth-Request-User: mallory",
        "--cert",
        &client.cert,
        "--key",
        &client.key,
        "https://site.test/oauth2/start",
    ]);
    assert!(
        a.body
            .contains("xfh=site.test xff=127.0.0.1 xfp=https user=\n"),
        "{combo}: {a:?}"
    );
}

/// One site for the smaller edge tests, with extra playbook text.
fn one_site(site_extra: &str, top_extra: &str) -> playbook::Playbook {
    let text = format!(
        r#"version = 1
{top_extra}
[[certificate]]
name = "edge"
source = "self-signed"
[[site]]
server_names = ["site.test"]
certificate = "edge"
{site_extra}
[[site.location]]
path = "/"
proxy = "http://127.0.0.1:3000"
"#
    );
    playbook::parse("edge.toml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn serve(pb: &playbook::Playbook, keep_default_site: bool) -> Served {
    let f = served::facts(&served::host_nginx_version(), "3.0.0");
    Served::start(
        served::materialize(pb, &f, keep_default_site),
        &[("/etc/nginx/conf.d/test-backends.conf", &backends())],
    )
}

/// curl's exit codes: 52 the server closed without answering (444 over
/// HTTP/1), 92 the same over HTTP/2 (the stream is reset), 35 the TLS
/// handshake was refused.
const EMPTY_REPLY: i32 = 52;
const STREAM_RESET: i32 = 92;
const HANDSHAKE_REFUSED: i32 = 35;

/// Nothing at all came back: no status, no body.
fn nothing(a: &Answer, exit: i32) -> bool {
    let closed = [
        exit,
        if exit == EMPTY_REPLY {
            STREAM_RESET
        } else {
            exit
        },
    ];
    a.status == 0 && a.body.is_empty() && closed.contains(&a.exit)
}

#[test]
fn strangers_get_nothing_on_any_port() {
    served::assert_root();
    let pb = one_site("listen = 8443", "");
    let s = serve(&pb, false);
    let known = [
        "--resolve",
        "site.test:80:127.0.0.1",
        "--resolve",
        "site.test:8443:127.0.0.1",
    ];
    // The site itself answers, so what follows is not a dead server.
    let a = s.curl(&[
        known[0],
        known[1],
        known[2],
        known[3],
        "https://site.test:8443/",
    ]);
    assert!(reached(&a), "{a:?}");
    let cases: &[(&str, &[&str], i32)] = &[
        (
            "unknown Host on 80",
            &["-H", "Host: other.test", "http://127.0.0.1/"],
            EMPTY_REPLY,
        ),
        (
            "no Host on 80",
            &["-H", "Host:", "--http1.0", "http://127.0.0.1/"],
            EMPTY_REPLY,
        ),
        (
            "no SNI on 8443",
            &["https://127.0.0.1:8443/"],
            HANDSHAKE_REFUSED,
        ),
        (
            "unknown SNI on 8443",
            &[
                "--resolve",
                "other.test:8443:127.0.0.1",
                "https://other.test:8443/",
            ],
            HANDSHAKE_REFUSED,
        ),
        (
            "known SNI, unknown Host on 8443",
            &[
                "--resolve",
                "site.test:8443:127.0.0.1",
                "-H",
                "Host: other.test",
                "https://site.test:8443/",
            ],
            EMPTY_REPLY,
        ),
        (
            "IPv6, unknown Host on 80",
            &["-H", "Host: other.test", "http://[::1]/"],
            EMPTY_REPLY,
        ),
        (
            "IPv6, no SNI on 8443",
            &["https://[::1]:8443/"],
            HANDSHAKE_REFUSED,
        ),
    ];
    for (what, args, exit) in cases {
        let a = s.curl(args);
        assert!(!reached(&a), "{what}: reached the backend: {a:?}");
        assert!(nothing(&a, *exit), "{what}: want curl exit {exit}: {a:?}");
    }
    // Server tokens are off everywhere portico answers.
    let a = s.curl(&[known[0], known[1], "http://site.test/x"]);
    assert!(a.headers.contains("Server: nginx\r\n"), "{a:?}");
}

#[test]
fn the_distros_default_site_keeps_port_80_and_strangers_still_never_reach_a_site() {
    served::assert_root();
    let pb = one_site("", "");
    // Debian's default site is the default server on 80 (both families):
    // portico leaves that port's default to it and takes 443.
    let s = serve(&pb, true);
    let a = s.curl(&["-H", "Host: other.test", "http://127.0.0.1/"]);
    assert!(!reached(&a), "{a:?}");
    assert!(
        a.status == 404 || a.status == 200,
        "Debian's default site answers: {a:?}"
    );
    let a = s.curl(&["https://127.0.0.1/"]);
    assert!(nothing(&a, HANDSHAKE_REFUSED), "{a:?}");
}

#[test]
fn a_site_that_serves_an_ip_address_is_reached_without_sni_and_strangers_still_get_nothing() {
    served::assert_root();
    let pb = one_site("", "").clone();
    let mut pb = pb;
    pb.sites[0].server_names.push("127.0.0.1".into());
    let s = serve(&pb, false);
    let a = s.curl(&["https://127.0.0.1/"]);
    assert!(reached(&a), "no SNI, Host 127.0.0.1: {a:?}");
    let a = s.curl(&["-H", "Host: other.test", "https://127.0.0.1/"]);
    assert!(nothing(&a, EMPTY_REPLY), "{a:?}");
    let a = s.curl(&[
        "--resolve",
        "other.test:443:127.0.0.1",
        "https://other.test/",
    ]);
    assert!(
        nothing(&a, EMPTY_REPLY),
        "unknown SNI: the handshake completes, the request gets nothing: {a:?}"
    );
}

#[test]
fn behind_a_non_default_port_the_backend_learns_the_port() {
    served::assert_root();
    let s = serve(&one_site("listen = 8443", ""), false);
    let a = s.curl(&[
        "--resolve",
        "site.test:8443:127.0.0.1",
        "-H",
        "X-Forwarded-Port: 1",
        "https://site.test:8443/x",
    ]);
    assert!(reached(&a), "{a:?}");
    assert!(a.body.contains("|host=site.test:8443|"), "{}", a.body);
    assert_eq!(echoed(&a, "X-Forwarded-Port"), "8443");
    assert_eq!(echoed(&a, "X-Forwarded-Host"), "site.test:8443");
}

#[test]
fn forwarded_for_is_the_peer_unless_it_is_a_trusted_proxy() {
    served::assert_root();
    let spoof = [
        "--resolve",
        "site.test:443:127.0.0.1",
        "-H",
        "X-Forwarded-For: 203.0.113.7, 6.6.6.6",
        "https://site.test/",
    ];
    // Not behind a load balancer: the client's chain is dropped.
    let s = serve(&one_site("", ""), false);
    let a = s.curl(&spoof);
    assert_eq!(echoed(&a, "X-Forwarded-For"), "127.0.0.1", "{}", a.body);
    drop(s);
    // Behind one (127.0.0.1 here): the real_ip module finds the client, the
    // rightmost address not trusted.
    let s = serve(
        &one_site(
            "",
            "[proxy]\ntrusted_proxies = [\"127.0.0.1\", \"6.6.6.0/24\"]",
        ),
        false,
    );
    let a = s.curl(&spoof);
    assert_eq!(echoed(&a, "X-Forwarded-For"), "203.0.113.7", "{}", a.body);
    assert_eq!(echoed(&a, "X-Real-IP"), "203.0.113.7", "{}", a.body);
}

#[test]
fn an_oauth2_can_pass_the_access_token_and_fill_the_headers_its_backends_read() {
    served::assert_root();
    let oauth2 = "[[oauth2]]\nname = \"sso\"\nupstream = \"http://127.0.0.1:4180\"\npass_access_token = true\nheaders = { \"X-WEBAUTH-USER\" = \"user\", \"X-Email\" = \"email\" }";
    let s = serve(&one_site("oauth2 = \"sso\"", oauth2), false);
    let base = ["--resolve", "site.test:443:127.0.0.1"];
    let a = s.curl(&[
        base[0],
        base[1],
        "-H",
        "Cookie: session=ok",
        "-H",
        "X-WEBAUTH-USER: mallory",
        "https://site.test/",
    ]);
    assert!(reached(&a), "{a:?}");
    assert_eq!(echoed(&a, "X-WEBAUTH-USER"), "alice", "{}", a.body);
    assert_eq!(echoed(&a, "X-Email"), "alice@example.test", "{}", a.body);
    assert_eq!(
        echoed(&a, "X-Auth-Request-Access-Token"),
        "token-of-alice",
        "{}",
        a.body
    );
    // Without a session the headers a client sends are no one's.
    let a = s.curl(&[
        base[0],
        base[1],
        "-H",
        "X-WEBAUTH-USER: mallory",
        "https://site.test/",
    ]);
    assert!(!reached(&a), "{a:?}");
}

#[test]
fn only_a_websocket_handshake_is_passed_on_as_an_upgrade() {
    served::assert_root();
    let s = serve(&one_site("[[site.location]]\npath = \"/ws/\"\nproxy = \"http://127.0.0.1:3000\"\nwebsocket = true", ""), false);
    let base = ["--http1.1", "--resolve", "site.test:443:127.0.0.1"];
    let ask = |upgrade: &str| {
        s.curl(&[
            base[0],
            base[1],
            base[2],
            "-H",
            &format!("Upgrade: {upgrade}"),
            "-H",
            "Connection: Upgrade, HTTP2-Settings",
            "-H",
            "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA",
            "https://site.test/ws/",
        ])
    };
    let a = ask("websocket");
    assert_eq!(echoed(&a, "Upgrade"), "websocket", "{}", a.body);
    assert_eq!(echoed(&a, "Connection"), "upgrade", "{}", a.body);
    // h2c (or anything else) would make the connection a tunnel that
    // nginx no longer reads: its later requests would carry any headers.
    for token in ["h2c", "websocket, h2c", "TLS/1.2"] {
        let a = ask(token);
        assert!(reached(&a), "{token}: {a:?}");
        assert_eq!(echoed(&a, "Upgrade"), "", "{token}: {}", a.body);
        assert_eq!(echoed(&a, "Connection"), "", "{token}: {}", a.body);
    }
    // A location without websockets passes no upgrade at all.
    let a = s.curl(&[
        base[0],
        base[1],
        base[2],
        "-H",
        "Upgrade: websocket",
        "-H",
        "Connection: upgrade",
        "https://site.test/",
    ]);
    assert_eq!(echoed(&a, "Upgrade"), "", "{}", a.body);
    assert_eq!(echoed(&a, "Connection"), "", "{}", a.body);
}

#[test]
fn a_site_without_a_root_location_serves_nothing_else() {
    served::assert_root();
    let text = "version = 1\n[[certificate]]\nname = \"edge\"\nsource = \"self-signed\"\n\
                [[site]]\nserver_names = [\"site.test\"]\ncertificate = \"edge\"\nhttp = \"serve\"\n\
                [[site.location]]\npath = \"/app/\"\nproxy = \"http://127.0.0.1:3000\"\n";
    let pb = playbook::parse("edge.toml", text).unwrap();
    let s = serve(&pb, false);
    for url in [
        "https://site.test/",
        "https://site.test/index.html",
        "http://site.test/",
    ] {
        let a = s.curl(&[
            "--resolve",
            "site.test:443:127.0.0.1",
            "--resolve",
            "site.test:80:127.0.0.1",
            url,
        ]);
        assert_eq!(a.status, 404, "{url}: {a:?}");
        assert!(
            !a.body.contains("Welcome to nginx"),
            "{url}: nginx's own root was served"
        );
    }
    let a = s.curl(&[
        "--resolve",
        "site.test:443:127.0.0.1",
        "https://site.test/app/x",
    ]);
    assert!(reached(&a), "{a:?}");
}

#[test]
fn headers_a_playbook_names_are_cleared_too() {
    served::assert_root();
    let s = serve(
        &one_site("", "[proxy]\nclear_headers = [\"X-Tenant\"]"),
        false,
    );
    let a = s.curl(&[
        "--resolve",
        "site.test:443:127.0.0.1",
        "-H",
        "X-Tenant: admin",
        "https://site.test/",
    ]);
    assert!(reached(&a), "{a:?}");
    assert_eq!(echoed(&a, "X-Tenant"), "", "{}", a.body);
}

#[test]
fn an_https_backend_must_present_a_certificate_the_playbook_trusts() {
    served::assert_root();
    // A backend on 127.0.0.1:3443 with a certificate from its own CA.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "backend CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["backend.test".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let backend = "server {\n    listen 127.0.0.1:3443 ssl;\n    ssl_certificate /etc/nginx/test-backend.crt;\n    ssl_certificate_key /etc/nginx/test-backend.key;\n    location / { return 200 \"TLS BACKEND\\n\"; }\n}\n";
    let f = served::facts(&served::host_nginx_version(), "3.0.0");
    for (ca, want) in [(ca_cert.pem(), 200), (served::other_ca_pem(), 502)] {
        let pb = one_site(
            "",
            "[proxy]\nbackend_ca = \"/etc/nginx/test-backend-ca.pem\"",
        );
        let mut pb = pb;
        pb.sites[0].locations[0].proxy = "https://backend.test:3443/".into();
        let s = Served::start(
            served::materialize(&pb, &f, false),
            &[
                ("/etc/nginx/conf.d/test-backends.conf", backend),
                ("/etc/nginx/test-backend.crt", &leaf.pem()),
                ("/etc/nginx/test-backend.key", &key.serialize_pem()),
                ("/etc/nginx/test-backend-ca.pem", &ca),
                ("/etc/hosts", "127.0.0.1 localhost backend.test\n"),
            ],
        );
        let a = s.curl(&["--resolve", "site.test:443:127.0.0.1", "https://site.test/"]);
        assert_eq!(a.status, want, "{a:?}\n{}", s.error_log());
        if want == 200 {
            assert!(a.body.contains("TLS BACKEND"), "{a:?}");
        }
    }
}
