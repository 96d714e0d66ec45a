//! End-to-end tests of HTTPS (issue 9 item 6): with a certificate and key configured the
//! server speaks only TLS on its port, a client trusting that certificate uses the whole API
//! over it, and plain HTTP to the port gets no answer.
//!
//! The certificate is a self-signed one for `127.0.0.1` made by the test (rcgen); all traffic
//! goes to 127.0.0.1.
//!
//! Also the start-up warnings for a server that other machines can reach: it binds `0.0.0.0`,
//! and the test still talks to `127.0.0.1` only.

mod support;

#[cfg(test)]
mod tests {
    use super::support::api::{HELLO, HELLO_NAME};
    use super::support::net::{NetStart, spawn_server_net};
    use super::support::{GUEST_SECRET, GUEST_UUID, ServerGuard, TEST_DEFAULTS};
    use serde_json::{Value, json};
    use std::path::PathBuf;
    use std::process::Command;
    use std::time::Duration;

    /// A self-signed certificate for 127.0.0.1 and its key, written as PEM files.
    struct TestCert {
        dir: tempfile::TempDir,
        cert_pem: String,
    }

    impl TestCert {
        fn new() -> Self {
            let certified = rcgen::generate_simple_self_signed(vec![
                "127.0.0.1".to_owned(),
                "localhost".to_owned(),
            ])
            .expect("generate a self-signed certificate");
            let dir = tempfile::tempdir().expect("a directory for the certificate");
            let cert_pem = certified.cert.pem();
            std::fs::write(dir.path().join("cert.pem"), &cert_pem).expect("write cert.pem");
            std::fs::write(
                dir.path().join("key.pem"),
                certified.signing_key.serialize_pem(),
            )
            .expect("write key.pem");
            Self { dir, cert_pem }
        }

        fn cert(&self) -> PathBuf {
            self.dir.path().join("cert.pem")
        }

        fn key(&self) -> PathBuf {
            self.dir.path().join("key.pem")
        }

        /// A client that trusts this certificate only.
        fn client(&self) -> reqwest::Client {
            let root = reqwest::Certificate::from_pem(self.cert_pem.as_bytes())
                .expect("parse the test certificate");
            reqwest::Client::builder()
                .add_root_certificate(root)
                .tls_built_in_root_certs(false)
                .timeout(Duration::from_secs(90))
                .build()
                .expect("build the https client")
        }
    }

    fn port_of(server: &ServerGuard) -> u16 {
        let base = server.base();
        assert!(
            base.starts_with("https://127.0.0.1:"),
            "the listening line says https: {base}"
        );
        base.rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port in the base URL")
    }

    async fn json_of(resp: reqwest::Response, what: &str) -> Value {
        let status = resp.status();
        let text = resp.text().await.expect("read the body");
        assert_eq!(status.as_u16(), 200, "{what}: {text}");
        serde_json::from_str(&text).expect("a JSON body")
    }

    /// Plain HTTP to the TLS port must not be answered as HTTP.
    async fn plain_http_fails(port: u16) {
        let plain = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("build the http client");
        let result = plain
            .get(format!("http://127.0.0.1:{port}/api/v1/namespaces"))
            .basic_auth(GUEST_UUID, Some(GUEST_SECRET))
            .send()
            .await;
        assert!(
            result.is_err(),
            "plain HTTP to the TLS port got an HTTP answer: {result:?}"
        );
    }

    #[tokio::test]
    async fn serves_the_api_over_tls_from_configured_pem_files_and_refuses_plain_http() {
        let cert = TestCert::new();
        let config = TEST_DEFAULTS.replace(
            "[server]\n",
            &format!(
                "[server]\ntls_cert = {:?}\ntls_key = {:?}\n",
                cert.cert().display().to_string(),
                cert.key().display().to_string()
            ),
        );
        let server = spawn_server_net(Some(&config), &NetStart::default());
        let port = port_of(&server);
        let https = cert.client();

        let put = https
            .put(server.ns_url(&format!("actions/{HELLO_NAME}?overwrite=true")))
            .basic_auth(GUEST_UUID, Some(GUEST_SECRET))
            .json(&json!({"exec": {"kind": "nodejs:20", "code": HELLO}}))
            .send()
            .await
            .expect("PUT the action over https");
        json_of(put, "create the action over https").await;
        let invoked = https
            .post(server.ns_url(&format!("actions/{HELLO_NAME}?blocking=true")))
            .basic_auth(GUEST_UUID, Some(GUEST_SECRET))
            .json(&json!({"name": "TLS"}))
            .send()
            .await
            .expect("invoke over https");
        let activation = json_of(invoked, "blocking invoke over https").await;
        assert_eq!(
            activation["response"]["result"]["payload"], "Hello, TLS!",
            "{activation}"
        );

        plain_http_fails(port).await;
        // The refused plain client did not break the listener.
        let again = https
            .get(server.ns_url("actions"))
            .basic_auth(GUEST_UUID, Some(GUEST_SECRET))
            .send()
            .await
            .expect("list actions over https after a plain HTTP attempt");
        json_of(again, "list actions over https").await;
    }

    #[tokio::test]
    async fn serves_tls_with_the_cert_and_key_given_as_flags() {
        let cert = TestCert::new();
        let server = spawn_server_net(
            None,
            &NetStart {
                args: vec![
                    "--tls-cert".to_owned(),
                    cert.cert().display().to_string(),
                    "--tls-key".to_owned(),
                    cert.key().display().to_string(),
                ],
                ..NetStart::default()
            },
        );
        let port = port_of(&server);
        let namespaces = cert
            .client()
            .get(server.url("/api/v1/namespaces"))
            .basic_auth(GUEST_UUID, Some(GUEST_SECRET))
            .send()
            .await
            .expect("list namespaces over https");
        let body = json_of(namespaces, "list namespaces over https").await;
        assert_eq!(body, json!(["guest"]));
        plain_http_fails(port).await;
    }

    /// Everything the server wrote on stderr (all of its runs).
    fn server_log(server: &ServerGuard) -> String {
        std::fs::read_to_string(server.dir().join("server.log")).unwrap_or_default()
    }

    /// `edgewhisk admin user regenerate SUBJECT --namespace SUBJECT` on the server's data
    /// directory; returns the new `uuid:key`.
    fn regenerate(server: &ServerGuard, subject: &str) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_edgewhisk"))
            .args([
                "admin",
                "user",
                "regenerate",
                subject,
                "--namespace",
                subject,
            ])
            .arg("--data-dir")
            .arg(server.data_dir())
            .env_remove("EW_CONFIG")
            .output()
            .expect("run edgewhisk admin");
        assert!(
            out.status.success(),
            "admin user regenerate {subject}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf-8 output")
            .trim()
            .to_owned()
    }

    #[tokio::test]
    async fn warns_on_a_non_loopback_address_while_well_known_keys_work_or_tls_is_off() {
        let all_interfaces = NetStart {
            listen: Some("0.0.0.0:0".to_owned()),
            ..NetStart::default()
        };
        let mut server = spawn_server_net(None, &all_interfaces);
        let reply = reqwest::Client::new()
            .get(server.url("/api/v1/namespaces"))
            .basic_auth(GUEST_UUID, Some(GUEST_SECRET))
            .send()
            .await
            .expect("list namespaces on 127.0.0.1");
        json_of(reply, "list namespaces with the guest key").await;
        let log = server_log(&server);
        for expected in [
            "the OpenWhisk guest key (uuid 23bc46b1-71f6-4ed5-8c54-816aa4f8c502) is still valid",
            "`edgewhisk admin user regenerate guest --namespace guest`",
            "the well-known whisk.system key (uuid 789c46b1-71f6-4ed5-8c54-816aa4f8c502) is \
             still valid",
            "`edgewhisk admin user regenerate whisk.system --namespace whisk.system`",
            "edgewhisk serves plain HTTP on 0.0.0.0:",
        ] {
            assert!(
                log.contains(expected),
                "the start-up warnings say {expected:?}; server log:\n{log}"
            );
        }

        server.stop();
        let guest = regenerate(&server, "guest");
        regenerate(&server, "whisk.system");
        let cert = TestCert::new();
        let seen = server_log(&server).len();
        server.start_net(&NetStart {
            args: vec![
                "--tls-cert".to_owned(),
                cert.cert().display().to_string(),
                "--tls-key".to_owned(),
                cert.key().display().to_string(),
            ],
            ..all_interfaces
        });
        let (uuid, key) = guest.split_once(':').expect("uuid:key");
        let reply = cert
            .client()
            .get(server.url("/api/v1/namespaces"))
            .basic_auth(uuid, Some(key))
            .send()
            .await
            .expect("list namespaces over https on 127.0.0.1");
        json_of(reply, "list namespaces with the regenerated guest key").await;
        let log = server_log(&server);
        let second_run = &log[seen..];
        assert!(
            second_run.contains("edgewhisk serving") && !second_run.contains("WARNING"),
            "no warning once both keys are replaced and TLS is on; server log of that run:\n\
             {second_run}"
        );
    }
}
