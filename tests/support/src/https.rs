//! One HTTP(S) request by curl, wherever it runs (this host, a sandbox, a
//! booted machine), and what came back: the probe every suite uses to see
//! what nginx serves.

/// A request, as curl's arguments.
#[derive(Debug, Clone)]
pub struct Request {
    args: Vec<String>,
    url: String,
}

impl Request {
    /// GET `url`, at most 10 s.
    pub fn get(url: &str) -> Self {
        Request {
            args: Vec::new(),
            url: url.into(),
        }
    }

    /// Without checking the server's certificate (`-k`).
    pub fn insecure(self) -> Self {
        self.arg("-k")
    }

    /// Checking the server's certificate against `ca` (a file).
    pub fn cacert(self, ca: &str) -> Self {
        self.arg("--cacert").arg(ca)
    }

    /// `host:port` reaches `ip` (no DNS needed).
    pub fn resolve(self, host: &str, port: u16, ip: &str) -> Self {
        let to = format!("{host}:{port}:{ip}");
        self.arg("--resolve").arg(&to)
    }

    /// With a client certificate and its key.
    pub fn client_cert(self, cert: &str, key: &str) -> Self {
        self.arg("--cert").arg(cert).arg("--key").arg(key)
    }

    /// With one more of curl's arguments (`-H`, `--http1.1`, ...).
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.into());
        self
    }

    /// curl's whole command line.
    pub fn argv(&self) -> Vec<String> {
        let mut argv: Vec<String> = ["curl", "-sS", "--max-time", "10", "-w", WRITE_OUT]
            .map(String::from)
            .to_vec();
        argv.extend(self.args.iter().cloned());
        argv.push(self.url.clone());
        argv
    }

    /// Runs curl on this host.
    pub fn send(&self) -> Answer {
        let argv = self.argv();
        let out = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .output()
            .expect("curl (tests/run installs it)");
        Answer::parse(out.status.code().unwrap_or(-1), &out.stdout)
    }
}

/// What curl writes after the body: a line with the status and where a
/// redirect points.
const WRITE_OUT: &str = "\n%{http_code} %{redirect_url}";

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// curl's exit code (0: a response came; 60: the certificate did not
    /// verify; 7: nothing listens, ...).
    pub exit: i32,
    /// The HTTP status; 0 when no response came.
    pub status: u16,
    /// Where a redirect points (empty when it is none).
    pub redirect: String,
    /// The body.
    pub body: String,
}

impl Answer {
    /// From curl's exit code and its standard output (with [`WRITE_OUT`]).
    pub fn parse(exit: i32, stdout: &[u8]) -> Answer {
        let text = String::from_utf8_lossy(stdout);
        let (body, tail) = text.rsplit_once('\n').unwrap_or(("", &text));
        let (status, redirect) = tail.split_once(' ').unwrap_or((tail, ""));
        Answer {
            exit,
            status: status.trim().parse().unwrap_or(0),
            redirect: redirect.trim().to_string(),
            body: body.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_curl_wrote_is_read_back() {
        let a = Answer::parse(0, b"<html>x\ny</html>\n301 https://a.test/x");
        assert_eq!((a.status, a.redirect.as_str()), (301, "https://a.test/x"));
        assert_eq!(a.body, "<html>x\ny</html>");
        let none = Answer::parse(7, b"\n000 ");
        assert_eq!((none.status, none.exit), (0, 7));
        let ok = Answer::parse(0, b"hello\n200 ");
        assert_eq!(
            (ok.status, ok.body.as_str(), ok.redirect.as_str()),
            (200, "hello", "")
        );
    }
}
