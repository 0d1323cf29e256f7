//! Helpers shared by the integration tests: run openssl, fail loudly when it
//! is missing (tests must never pass by skipping).

#![allow(dead_code, clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

/// Runs `openssl args...` in `dir`; panics with stderr on failure.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("openssl is required for this test and could not run: {e}"));
    assert!(
        out.status.success(),
        "openssl {:?} failed: {}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
}

pub fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("write {name}: {e}"));
}

/// Builds an organisation PKI with openssl in `dir`:
/// root.pem/root.key (CA), int.pem/int.key (intermediate CA, pathlen 0),
/// and leaves signed by the intermediate: `leaf` (digitalSignature +
/// codeSigning), `leaf-noeku` (no EKU), `leaf-nods` (keyAgreement only),
/// `leaf-server` (serverAuth EKU), `leaf-short` (valid 1 day); `other.pem`
/// an unrelated root; `fake-root.pem` a self-signed CA with the
/// intermediate's subject name.
pub fn make_pki(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut root = vec!["req", "-x509"];
    root.extend_from_slice(&ec);
    root.extend_from_slice(&[
        "-keyout",
        "root.key",
        "-out",
        "root.pem",
        "-subj",
        "/O=Example/CN=Example Root CA",
        "-days",
        "3650",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &root);
    let mut other = vec!["req", "-x509"];
    other.extend_from_slice(&ec);
    other.extend_from_slice(&[
        "-keyout",
        "other.key",
        "-out",
        "other.pem",
        "-subj",
        "/O=Other/CN=Other Root CA",
        "-days",
        "3650",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &other);
    let mut fake = vec!["req", "-x509"];
    fake.extend_from_slice(&ec);
    fake.extend_from_slice(&[
        "-keyout",
        "fake.key",
        "-out",
        "fake-root.pem",
        "-subj",
        "/O=Example/CN=Example Intermediate CA",
        "-days",
        "3650",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &fake);
    write(
        dir,
        "int.ext",
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n",
    );
    let mut int_req = vec!["req", "-new"];
    int_req.extend_from_slice(&ec);
    int_req.extend_from_slice(&[
        "-keyout",
        "int.key",
        "-out",
        "int.csr",
        "-subj",
        "/O=Example/CN=Example Intermediate CA",
    ]);
    openssl(dir, &int_req);
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "int.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "1825",
            "-extfile",
            "int.ext",
            "-out",
            "int.pem",
        ],
    );
    let leaves: [(&str, &str, &str); 5] = [
        (
            "leaf",
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n",
            "365",
        ),
        (
            "leaf-noeku",
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n",
            "365",
        ),
        (
            "leaf-nods",
            "basicConstraints=CA:FALSE\nkeyUsage=critical,keyAgreement\nextendedKeyUsage=codeSigning\n",
            "365",
        ),
        (
            "leaf-server",
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
            "365",
        ),
        (
            "leaf-short",
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n",
            "1",
        ),
    ];
    for (name, ext, days) in leaves {
        write(dir, &format!("{name}.ext"), ext);
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let subj = format!("/O=Example/CN={name}@example.com");
        let mut req = vec!["req", "-new"];
        req.extend_from_slice(&ec);
        req.extend_from_slice(&["-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(dir, &req);
        let extfile = format!("{name}.ext");
        let out = format!("{name}.pem");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "int.pem",
                "-CAkey",
                "int.key",
                "-CAcreateserial",
                "-days",
                days,
                "-extfile",
                &extfile,
                "-out",
                &out,
            ],
        );
    }
}
