//! RFC 2136 dynamic updates signed with TSIG (RFC 8945): the provider that
//! works with BIND, Knot, PowerDNS and many hosted services. The secret is
//! read from its file for each run and never leaves this module but as the
//! signature.

use core::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use hickory_proto::dnssec::rdata::tsig::TsigAlgorithm;
use hickory_proto::dnssec::tsig::TSigner;
use hickory_proto::op::{update_message, Message, ResponseCode, UpdateMessage};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{Name, RData, Record, RecordSet, RecordType};

use super::{lookup::shown, wire, DnsError};
use crate::host::Root;
use crate::playbook::dns::Tsig;

/// The TTL of a challenge record: short, so a resolver that saw it does
/// not keep it after cleanup.
const TTL: u32 = 60;

/// How long an update may take.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(10);

/// How far the server's clock may be from ours (RFC 8945 recommends 300 s).
const FUDGE: u16 = 300;

/// hickory's name for a TSIG algorithm the playbook allows.
fn algorithm(name: &str) -> Option<TsigAlgorithm> {
    crate::playbook::dns::tsig_algorithm(name).map(|t| match t {
        Tsig::HmacSha256 => TsigAlgorithm::HmacSha256,
        Tsig::HmacSha384 => TsigAlgorithm::HmacSha384,
        Tsig::HmacSha512 => TsigAlgorithm::HmacSha512,
    })
}

/// The key as a TSIG signer: the secret file holds the base64 secret alone,
/// or a `key "NAME" { algorithm ...; secret "..."; };` clause as
/// `tsig-keygen` writes it (then its name and algorithm must agree with
/// the playbook's). No byte of the secret appears in an error.
pub fn signer(
    root: &Root,
    secret_file: &str,
    key_name: &str,
    algorithm_name: &str,
) -> Result<TSigner, DnsError> {
    let path = Path::new(secret_file);
    let bad = |reason: String| DnsError::Secret {
        path: path.to_path_buf(),
        reason,
    };
    let text = root
        .read_to_string(path)
        .map_err(|e| bad(e.to_string()))?
        .ok_or_else(|| bad("the file does not exist".into()))?;
    let key = parse_key_file(&text).map_err(bad)?;
    if let Some(name) = &key.name {
        if name.trim_end_matches('.') != key_name.trim_end_matches('.') {
            return Err(bad(format!(
                "the file holds the key {name:?}, and the playbook names key_name = {key_name:?}"
            )));
        }
    }
    if let Some(alg) = &key.algorithm {
        if !alg.eq_ignore_ascii_case(algorithm_name) {
            return Err(bad(format!(
                "the file's key is {alg:?}, and the playbook says algorithm = {algorithm_name:?}"
            )));
        }
    }
    let algorithm = algorithm(algorithm_name).ok_or_else(|| {
        bad(format!(
            "{algorithm_name:?} is not a TSIG algorithm portico signs with"
        ))
    })?;
    let name = Name::from_ascii(key_name)
        .map_err(|e| bad(format!("key_name {key_name:?} is not a DNS name: {e}")))?;
    TSigner::new(key.secret, algorithm, name, FUDGE).map_err(|e| bad(e.to_string()))
}

/// A word, a quoted string, or punctuation of a named.conf clause.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Punct(char),
}

/// The tokens of a `key` clause (comments are not expected in one).
fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let mut q = String::new();
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                    q.push(c);
                }
                out.push(Token::Quoted(q));
            }
            '{' | '}' | ';' => out.push(Token::Punct(c)),
            c if c.is_whitespace() => {}
            c => {
                let mut w = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || "{};\"".contains(n) {
                        break;
                    }
                    w.push(n);
                    chars.next();
                }
                out.push(Token::Word(w));
            }
        }
    }
    out
}

/// What a key file says.
#[derive(Debug, PartialEq, Eq)]
struct KeyFile {
    name: Option<String>,
    algorithm: Option<String>,
    secret: Vec<u8>,
}

fn parse_key_file(text: &str) -> Result<KeyFile, String> {
    // A clause has braces, which base64 never holds.
    let (name, algorithm, encoded) = if text.contains('{') {
        let tokens = tokens(text);
        // The token after `word` where `word` stands as a word of its own.
        let after = |word: &str| {
            tokens
                .windows(2)
                .find(|w| w[0] == Token::Word(word.into()))
                .map(|w| w[1].clone())
        };
        let secret = match after("secret") {
            Some(Token::Quoted(s)) => s,
            _ => return Err(
                "a key clause without `secret \"...\";`: expected the key as tsig-keygen writes it"
                    .into(),
            ),
        };
        let name = match after("key") {
            Some(Token::Quoted(n)) | Some(Token::Word(n)) => Some(n),
            _ => None,
        };
        let algorithm = match after("algorithm") {
            Some(Token::Quoted(a)) | Some(Token::Word(a)) => Some(a),
            _ => None,
        };
        (name, algorithm, secret)
    } else {
        (None, None, text.trim().to_string())
    };
    use base64::Engine;
    let secret = base64::engine::general_purpose::STANDARD
        .decode(&encoded)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(&encoded))
        .map_err(|_| {
            format!(
                "the secret is not base64 ({} characters read); expected the secret alone, \
                 or the key clause tsig-keygen writes",
                encoded.len()
            )
        })?;
    if secret.is_empty() {
        return Err("the secret is empty".into());
    }
    Ok(KeyFile {
        name,
        algorithm,
        secret,
    })
}

/// Adds (`add`) or removes TXT `records` of `zone` in one signed update;
/// removal takes away only these values (another client's records on the
/// same name stay).
pub async fn update(
    server: SocketAddr,
    signer: &TSigner,
    zone: &Name,
    records: &[(Name, String)],
    add: bool,
) -> Result<(), DnsError> {
    let listed = || {
        records
            .iter()
            .map(|(n, _)| shown(n))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let fail = |reason: String| DnsError::Update {
        server,
        zone: shown(zone),
        records: listed(),
        reason,
    };
    let mut message = build(zone, records, add).map_err(fail)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0);
    let mut verify = message
        .finalize(signer, now)
        .map_err(|e| fail(format!("cannot sign the update: {e}")))?;
    let bytes = message
        .to_vec()
        .map_err(|e| fail(format!("cannot encode the update: {e}")))?;
    let answer = wire::tcp(server, &bytes, UPDATE_TIMEOUT)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let parsed = wire::parse(&answer).map_err(|e| fail(e.to_string()))?;
    if parsed.id() != message.id() {
        return Err(fail("the answer is to another message".into()));
    }
    match parsed.response_code() {
        ResponseCode::NoError => {}
        code => return Err(fail(refusal(code, signer))),
    }
    // A success must be signed with our key: anything else could be a
    // forged "done" for an update that never happened.
    if let Some(verify) = verify.as_mut() {
        verify(&answer).map_err(|e| {
            fail(format!(
                "the server's answer is not signed with the key {}: {e}",
                shown(signer.signer_name())
            ))
        })?;
    }
    Ok(())
}

/// The update message (unsigned). Every name must be in `zone`.
fn build(zone: &Name, records: &[(Name, String)], add: bool) -> Result<Message, String> {
    let mut sets: Vec<RecordSet> = Vec::new();
    for (name, value) in records {
        if !zone.zone_of(name) {
            return Err(format!(
                "{} is not in the zone {}",
                shown(name),
                shown(zone)
            ));
        }
        let rdata = RData::TXT(TXT::new(vec![value.clone()]));
        match sets.iter_mut().find(|s| s.name() == name) {
            Some(set) => {
                set.add_rdata(rdata);
            }
            None => sets.push(RecordSet::from(Record::from_rdata(
                name.clone(),
                TTL,
                rdata,
            ))),
        }
    }
    let mut sets = sets.into_iter();
    let first = sets.next().ok_or("no records to update")?;
    let mut message = if add {
        update_message::append(first, zone.clone(), false, false)
    } else {
        update_message::delete_by_rdata(first, zone.clone(), false)
    };
    for mut set in sets {
        if !add {
            // What delete_by_rdata does to the first set.
            set.set_dns_class(hickory_proto::rr::DNSClass::NONE);
            set.set_ttl(0);
        }
        message.add_updates(set);
    }
    message.set_id(wire::random_id());
    debug_assert!(message
        .updates()
        .iter()
        .all(|r| r.record_type() == RecordType::TXT));
    Ok(message)
}

/// What a refusal means, for the person fixing it.
fn refusal(code: ResponseCode, signer: &TSigner) -> String {
    let key = shown(signer.signer_name());
    match code {
        // RFC 8945 5.2: BADKEY, BADSIG and BADTIME all come back as NOTAUTH.
        ResponseCode::NotAuth => format!(
            "the server does not accept the TSIG key {key} (NOTAUTH: a wrong secret, a key name or \
             algorithm it does not know, or clocks more than {FUDGE} s apart)"
        ),
        ResponseCode::Refused => format!(
            "the server refused the update (REFUSED: does its update-policy let the key {key} \
             change TXT records at these names?)"
        ),
        ResponseCode::NotZone => {
            "the server is not authoritative for the zone (NOTZONE: set zone, or check server)"
                .into()
        }
        code => format!("the server answered {code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_alone_or_as_tsig_keygen_writes_them() {
        // What `tsig-keygen -a hmac-sha256 portico` printed.
        let keygen = "key \"portico\" {\n\talgorithm hmac-sha256;\n\tsecret \"6CcxqyhnPOrYbN8MrYZ8v0g1pLKaOWt9Y4o0dYkKmFE=\";\n};\n";
        let k = parse_key_file(keygen).unwrap();
        assert_eq!(k.name.as_deref(), Some("portico"));
        assert_eq!(k.algorithm.as_deref(), Some("hmac-sha256"));
        assert_eq!(k.secret.len(), 32);
        // A name with a keyword in it is still a name.
        let tricky = keygen.replace("\"portico\"", "\"portico-secret\"");
        let t = parse_key_file(&tricky).unwrap();
        assert_eq!(t.name.as_deref(), Some("portico-secret"));
        assert_eq!(t.secret, k.secret);
        let alone = parse_key_file("6CcxqyhnPOrYbN8MrYZ8v0g1pLKaOWt9Y4o0dYkKmFE=\n").unwrap();
        assert_eq!(alone.secret, k.secret);
        assert_eq!(alone.name, None);
    }

    #[test]
    fn a_bad_secret_is_refused_without_showing_it() {
        for text in ["", "not base64 at all!", "key \"x\" { secret; };"] {
            let e = parse_key_file(text).unwrap_err();
            assert!(!e.contains("base64 at all"), "{e}");
        }
    }

    #[test]
    fn one_update_carries_every_record_and_removal_names_the_values() {
        let zone = Name::from_ascii("example.test.").unwrap();
        let at = Name::from_ascii("_acme-challenge.example.test.").unwrap();
        let records = vec![
            (at.clone(), "one".to_string()),
            (at.clone(), "two".to_string()),
        ];
        let add = build(&zone, &records, true).unwrap();
        assert_eq!(add.updates().len(), 2);
        assert!(add.updates().iter().all(|r| r.ttl() == TTL));
        let del = build(&zone, &records, false).unwrap();
        assert_eq!(del.updates().len(), 2);
        assert!(del
            .updates()
            .iter()
            .all(|r| r.dns_class() == hickory_proto::rr::DNSClass::NONE && r.ttl() == 0));
        let outside = vec![(
            Name::from_ascii("_acme-challenge.other.test.").unwrap(),
            "x".into(),
        )];
        assert!(build(&zone, &outside, true)
            .unwrap_err()
            .contains("not in the zone"));
    }
}
