//! Every move between two valid playbooks, in one apply, on real nginx.
//!
//! Chains of random valid playbooks (sites added, dropped and renamed,
//! listen ports moved, certificates switched between self-signed, a
//! private CA and ACME through a real pebble, oauth2 and client
//! certificates switched on and off, locations and backends changed, port
//! 80 redirecting or serving, certificates shared between sites) are
//! applied one after another with `portico apply` in a sandbox of its own
//! (tests/support/sandbox.rs: nginx, pebble and the backends really
//! serving). Each move must succeed on its first run, change nothing on a
//! second, and leave every site of the new playbook answering as it says
//! and no site only the old one had answering at all.
//!
//! The seed is printed; `PORTICO_SEED=N` replays a chain exactly,
//! `PORTICO_MOVES=N` sets how many moves a run makes (300 in tests/run).
#![cfg(feature = "system")]

use std::collections::BTreeMap;
use std::fmt::Write as _;

use support::sandbox::Sandbox;

/// splitmix64: small, and the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    SelfSigned,
    Ca,
    Acme,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientAuth {
    Off,
    Optional,
    On,
}

/// One site of a playbook, as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Site {
    listen: u16,
    backend: u16,
    /// A second location, `/api/`, to this backend.
    api: Option<u16>,
    serve: bool,
    oauth2: bool,
    client_auth: ClientAuth,
    /// Its own certificate's source; `None`: the shared certificate.
    source: Option<Source>,
}

/// A playbook, as the model sees it: sites by index (name `sN.move.test`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Model {
    sites: BTreeMap<usize, Site>,
    shared: Source,
}

const POOL: usize = 6;
const BACKENDS: [u16; 4] = [3000, 3001, 3002, 3003];
const OAUTH2_STUB: u16 = 4180;

fn name(i: usize) -> String {
    format!("s{i}.move.test")
}

fn random_site(r: &mut Rng) -> Site {
    let source = match r.below(4) {
        0 => None,
        1 => Some(Source::Ca),
        2 => Some(Source::Acme),
        _ => Some(Source::SelfSigned),
    };
    let client_auth = match r.below(5) {
        0 => ClientAuth::On,
        1 => ClientAuth::Optional,
        _ => ClientAuth::Off,
    };
    Site {
        listen: if r.chance(30) { 8443 } else { 443 },
        backend: BACKENDS[r.below(4) as usize],
        api: r.chance(30).then(|| BACKENDS[r.below(4) as usize]),
        // Port 80 serving is refused with client certificates.
        serve: client_auth == ClientAuth::Off && r.chance(25),
        oauth2: r.chance(25),
        client_auth,
        source,
    }
}

fn random_source(r: &mut Rng) -> Source {
    match r.below(3) {
        0 => Source::SelfSigned,
        1 => Source::Ca,
        _ => Source::Acme,
    }
}

/// The next playbook: one to three edits of the last one.
fn next(r: &mut Rng, m: &Model) -> Model {
    let mut m = m.clone();
    for _ in 0..=r.below(3) {
        let i = r.below(POOL as u64) as usize;
        match (m.sites.contains_key(&i), r.below(10)) {
            (false, _) => {
                m.sites.insert(i, random_site(r));
            }
            (true, 0) if m.sites.len() > 1 => {
                m.sites.remove(&i);
            }
            (true, 1) => {
                // Renamed: the same site under another name.
                let site = m.sites.remove(&i).unwrap();
                let j = (i + 1 + r.below(POOL as u64 - 1) as usize) % POOL;
                m.sites.insert(j, site);
            }
            (true, k) => {
                let s = m.sites.get_mut(&i).unwrap();
                match k {
                    2 => s.listen = if s.listen == 443 { 8443 } else { 443 },
                    3 => s.backend = BACKENDS[r.below(4) as usize],
                    4 => {
                        s.api = if s.api.is_some() {
                            None
                        } else {
                            Some(BACKENDS[r.below(4) as usize])
                        }
                    }
                    5 => s.oauth2 = !s.oauth2,
                    6 => {
                        s.client_auth = match s.client_auth {
                            ClientAuth::Off => ClientAuth::On,
                            ClientAuth::On => ClientAuth::Optional,
                            ClientAuth::Optional => ClientAuth::Off,
                        };
                        if s.client_auth != ClientAuth::Off {
                            s.serve = false;
                        }
                    }
                    7 => s.serve = !s.serve && s.client_auth == ClientAuth::Off,
                    8 => {
                        s.source = if s.source.is_some() {
                            None
                        } else {
                            Some(random_source(r))
                        }
                    }
                    _ => m.shared = random_source(r),
                }
            }
        }
    }
    m
}

fn source_toml(s: Source) -> &'static str {
    match s {
        Source::SelfSigned => "source = \"self-signed\"\n",
        Source::Ca => "source = \"ca\"\nca = \"internal\"\n",
        Source::Acme => "source = \"acme\"\n",
    }
}

fn toml(m: &Model, ca_root: &str) -> String {
    let mut t = format!(
        "version = 1\n[firewall]\nbackend = \"none\"\n[acme]\ndirectory = \"https://127.0.0.1:14000/dir\"\n\
         ca_root = \"{ca_root}\"\nemail = \"ops@move.test\"\nagree_terms = true\n\
         [[ca]]\nname = \"clients\"\n[[ca]]\nname = \"internal\"\n\
         [[oauth2]]\nname = \"sso\"\nupstream = \"http://127.0.0.1:{OAUTH2_STUB}\"\n"
    );
    if m.sites.values().any(|s| s.source.is_none()) {
        let _ = write!(
            t,
            "[[certificate]]\nname = \"shared\"\n{}",
            source_toml(m.shared)
        );
    }
    for (i, s) in &m.sites {
        if let Some(src) = s.source {
            let _ = write!(t, "[[certificate]]\nname = \"c{i}\"\n{}", source_toml(src));
        }
    }
    for (i, s) in &m.sites {
        let cert = match s.source {
            Some(_) => format!("c{i}"),
            None => "shared".into(),
        };
        let _ = write!(
            t,
            "[[site]]\nserver_names = [\"{}\"]\ncertificate = \"{cert}\"\nlisten = {}\nhttp = \"{}\"\n",
            name(*i),
            s.listen,
            if s.serve { "serve" } else { "redirect" }
        );
        if s.oauth2 {
            t.push_str("oauth2 = \"sso\"\n");
        }
        match s.client_auth {
            ClientAuth::Off => {}
            ClientAuth::Optional => {
                t.push_str("client_auth = { ca = \"clients\", verify = \"optional\" }\n")
            }
            ClientAuth::On => t.push_str("client_auth = { ca = \"clients\", verify = \"on\" }\n"),
        }
        let _ = write!(
            t,
            "[[site.location]]\npath = \"/\"\nproxy = \"http://127.0.0.1:{}\"\n",
            s.backend
        );
        if let Some(api) = s.api {
            let _ = write!(
                t,
                "[[site.location]]\npath = \"/api/\"\nproxy = \"http://127.0.0.1:{api}\"\n"
            );
        }
    }
    t
}

/// What a request got.
struct Got {
    code: i32,
    status: u16,
    body: String,
}

fn get(sb: &Sandbox, args: &[&str], url: &str) -> Got {
    let (code, status, body) = sb.curl(args, url);
    Got { code, status, body }
}

/// Every site of `m` answers as `m` says; the names of `gone` answer
/// nothing. Returns what did not hold.
fn verify(sb: &Sandbox, m: &Model, gone: &[usize], client_cert: Option<&str>) -> Vec<String> {
    let mut wrong = Vec::new();
    for (i, s) in &m.sites {
        let n = name(*i);
        let resolve = format!("{n}:{}:127.0.0.1", s.listen);
        let base = format!("https://{n}:{}", s.listen);
        let mut args = vec!["-k", "--resolve", resolve.as_str()];
        let cert_args;
        if let (ClientAuth::On, Some(c)) = (s.client_auth, client_cert) {
            cert_args = [
                "--cert".to_string(),
                format!("{c}.crt"),
                "--key".to_string(),
                format!("{c}.key"),
            ];
            args.extend(cert_args.iter().map(String::as_str));
        }
        for (path, backend) in [
            ("/", Some(s.backend)),
            ("/api/x", s.api.or(Some(s.backend))),
        ] {
            let g = get(sb, &args, &format!("{base}{path}"));
            let want = format!("backend {}", backend.unwrap());
            let protected = s.oauth2 || (s.client_auth == ClientAuth::On && client_cert.is_none());
            if protected {
                if g.body.contains("backend ") {
                    wrong.push(format!(
                        "{n}{path}: protected, but the backend answered ({})",
                        g.body
                    ));
                }
            } else if g.status != 200 || g.body != want {
                wrong.push(format!(
                    "{n}{path} on {}: wanted 200 \"{want}\", got exit {} status {} \"{}\"",
                    s.listen, g.code, g.status, g.body
                ));
            }
        }
        // The served certificate covers the name and is from its source.
        let out = sb.run(&[
            "sh",
            "-c",
            &format!(
                "openssl s_client -connect 127.0.0.1:{} -servername {n} </dev/null 2>/dev/null | openssl x509 -noout -issuer -subject -ext subjectAltName",
                s.listen
            ),
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        if !text.contains(&format!("DNS:{n}")) {
            wrong.push(format!(
                "{n}: the certificate served on {} does not name it:\n{text}",
                s.listen
            ));
        }
        let source = s.source.unwrap_or(m.shared);
        let issuer_ok = match source {
            Source::Acme => {
                text.contains("issuer=CN = Pebble") || text.contains("issuer=CN=Pebble")
            }
            Source::Ca => text.contains("internal"),
            Source::SelfSigned => !text.contains("Pebble") && !text.contains("internal"),
        };
        if !issuer_ok {
            wrong.push(format!(
                "{n}: the certificate is not from its source ({source:?}):\n{text}"
            ));
        }
        // Port 80.
        let resolve80 = format!("{n}:80:127.0.0.1");
        let g = get(sb, &["--resolve", &resolve80], &format!("http://{n}/"));
        if s.serve && !s.oauth2 {
            if g.body != format!("backend {}", s.backend) {
                wrong.push(format!(
                    "{n} port 80 serves, got {} \"{}\"",
                    g.status, g.body
                ));
            }
        } else if s.serve {
            if g.body.contains("backend ") {
                wrong.push(format!("{n} port 80: protected, but the backend answered"));
            }
        } else if !(300..400).contains(&g.status) {
            wrong.push(format!(
                "{n} port 80 redirects, got {} \"{}\"",
                g.status, g.body
            ));
        }
    }
    for i in gone {
        let n = name(*i);
        for port in [443u16, 8443] {
            let resolve = format!("{n}:{port}:127.0.0.1");
            let g = get(
                sb,
                &["-k", "--resolve", &resolve],
                &format!("https://{n}:{port}/"),
            );
            if g.body.contains("backend ") || g.status == 200 {
                wrong.push(format!(
                    "{n} was dropped but answers on {port}: {} \"{}\"",
                    g.status, g.body
                ));
            }
        }
        let resolve80 = format!("{n}:80:127.0.0.1");
        let g = get(sb, &["--resolve", &resolve80], &format!("http://{n}/"));
        if g.status != 0 && g.status != 404 {
            wrong.push(format!("{n} was dropped but port 80 answers {}", g.status));
        }
    }
    wrong
}

/// `portico apply` of `text`; the JSON report.
fn apply(sb: &Sandbox, text: &str) -> (bool, serde_json::Value, String) {
    sb.write("/etc/portico/move.toml", text);
    let out = sb.portico(
        &[],
        &["apply", "--replace", "--json", "/etc/portico/move.toml"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_default();
    (
        out.status.success(),
        report,
        format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)),
    )
}

fn failures(report: &serde_json::Value) -> String {
    report["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["status"] == "failed")
        .map(|t| format!("{}: {}", t["name"], t["reason"]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn changed(report: &serde_json::Value) -> Vec<String> {
    report["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["status"] == "changed")
        .map(|t| t["name"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// A sandbox with pebble, the backends and the oauth2 stand-in (401 to
/// every sub-request: nobody is signed in).
fn sandbox() -> (Sandbox, &'static str) {
    let sb = Sandbox::new();
    let ca_root = sb.start_pebble();
    sb.start_backends(&BACKENDS);
    sb.start_status_server(OAUTH2_STUB, 401);
    (sb, ca_root)
}

/// One chain of `moves` playbooks from `seed`; returns how many moves ran.
fn chain(seed: u64, moves: usize) -> usize {
    let (sb, ca_root) = sandbox();
    let mut r = Rng(seed);
    let mut m = Model {
        sites: BTreeMap::new(),
        shared: random_source(&mut r),
    };
    m.sites.insert(0, random_site(&mut r));
    let mut client: Option<String> = None;
    for step in 0..moves {
        let q = if step == 0 {
            m.clone()
        } else {
            next(&mut r, &m)
        };
        let text = toml(&q, ca_root);
        let (ok, report, said) = apply(&sb, &text);
        assert!(
            ok,
            "seed {seed}, move {step}: the first apply failed:\n{}\n--- playbook\n{text}--- output\n{said}",
            failures(&report)
        );
        let (ok, again, said) = apply(&sb, &text);
        let changed = changed(&again);
        assert!(
            ok && changed.is_empty(),
            "seed {seed}, move {step}: the second apply changed {changed:?}:\n{said}\n--- playbook\n{text}"
        );
        if client.is_none() && q.sites.values().any(|s| s.client_auth == ClientAuth::On) {
            sb.ok(&[
                support::bin::exe().to_str().unwrap(),
                "ca",
                "issue",
                "clients",
                "--cn",
                "mover",
                "--out",
                "/tmp",
            ]);
            client = Some("/tmp/mover".into());
        }
        let gone: Vec<usize> = m
            .sites
            .keys()
            .filter(|i| !q.sites.contains_key(i))
            .copied()
            .collect();
        let wrong = verify(&sb, &q, &gone, client.as_deref());
        assert!(
            wrong.is_empty(),
            "seed {seed}, move {step}: served wrong:\n{}\n--- playbook\n{text}",
            wrong.join("\n")
        );
        m = q;
    }
    moves
}

#[test]
fn every_move_between_random_playbooks_succeeds_in_one_apply() {
    let total: usize = std::env::var("PORTICO_MOVES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let seed: u64 = std::env::var("PORTICO_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let per_chain = 20;
    let chains = total.div_ceil(per_chain);
    eprintln!("transitions: seed {seed}: {chains} chains of {per_chain} moves (PORTICO_SEED={seed} replays)");
    let mut done = 0;
    for c in 0..chains as u64 {
        let s = seed.wrapping_add(c);
        eprintln!("transitions: chain seed {s}");
        done += chain(s, per_chain);
    }
    eprintln!("transitions: {done} moves, every one in one apply");
}

/// The move that failed every time before generations: three ACME sites,
/// then a fourth added while another's backend moves.
#[test]
fn a_new_acme_site_and_a_moved_backend_in_one_apply() {
    let (sb, ca_root) = sandbox();
    let site = |backend| Site {
        listen: 443,
        backend,
        api: None,
        serve: false,
        oauth2: false,
        client_auth: ClientAuth::Off,
        source: Some(Source::Acme),
    };
    let mut p = Model {
        sites: BTreeMap::new(),
        shared: Source::Acme,
    };
    for (i, b) in [(0, 3002), (1, 3000), (2, 3002)] {
        p.sites.insert(i, site(b));
    }
    let (ok, report, said) = apply(&sb, &toml(&p, ca_root));
    assert!(ok, "{}\n{said}", failures(&report));
    let mut q = p.clone();
    q.sites.insert(3, site(3003));
    q.sites.get_mut(&1).unwrap().backend = 3001;
    let (ok, report, said) = apply(&sb, &toml(&q, ca_root));
    assert!(ok, "the move failed:\n{}\n{said}", failures(&report));
    let wrong = verify(&sb, &q, &[], None);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
