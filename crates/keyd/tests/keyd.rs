//! A key manager on loopback: it wraps and opens the data keys of the nodes it serves, for
//! them alone, over the authenticated channel.

use std::{net::SocketAddr, sync::mpsc, time::Duration};
use trellis_crypto::ValidatorKey;
use trellis_keyd::{KeydDir, KeydKek};
use trellis_vault::{DataKey, KeyWrapper, WrapError};

/// A key manager serving `nodes`, running on a thread for the test's life.
fn start(dir: &std::path::Path, nodes: &[&ValidatorKey]) -> (SocketAddr, String) {
    let keyd = KeydDir::new(dir);
    let identity = keyd.init("127.0.0.1:0".parse().unwrap()).unwrap();
    for (i, node) in nodes.iter().enumerate() {
        let id = keyd
            .allow(&format!("member-{i}"), &node.public_hex())
            .unwrap();
        assert!(id.starts_with("keyd:"), "{id}");
    }
    let (ready, address) = mpsc::channel();
    let dir = dir.to_owned();
    std::thread::spawn(move || {
        KeydDir::new(&dir)
            .serve(move |addr| ready.send(addr).unwrap())
            .unwrap();
    });
    let address = address.recv_timeout(Duration::from_secs(10)).unwrap();
    (address, identity)
}

#[test]
fn a_served_node_wraps_and_opens_its_data_keys_and_no_one_else_can() {
    let dir = tempfile::tempdir().unwrap();
    let (member, other) = (
        ValidatorKey::generate().unwrap(),
        ValidatorKey::generate().unwrap(),
    );
    let (address, identity) = start(dir.path(), &[&member, &other]);

    let kek = KeydKek::connect(address, &identity, member.validator_signer()).unwrap();
    assert!(kek.id().starts_with("keyd:"), "{}", kek.id());
    let data = DataKey::from_bytes([9; 32]);
    let wrapped = kek.wrap(&data, b"#1").unwrap();
    assert!(!wrapped.windows(32).any(|w| w == [9; 32]));
    assert_eq!(kek.unwrap(&wrapped, b"#1").unwrap().expose(), &[9; 32]);
    assert!(matches!(
        kek.unwrap(&wrapped, b"#2"),
        Err(WrapError::NotItsKey)
    ));

    // Another node it serves has a key of its own: the first node's wrapped key does not open.
    let others = KeydKek::connect(address, &identity, other.validator_signer()).unwrap();
    assert_ne!(others.id(), kek.id());
    assert!(matches!(
        others.unwrap(&wrapped, b"#1"),
        Err(WrapError::NotItsKey)
    ));

    // A node it does not serve is refused at the handshake.
    let stranger = ValidatorKey::generate().unwrap();
    let error = KeydKek::connect(address, &identity, stranger.validator_signer())
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("does not serve this node's key"), "{error}");

    // The key manager must be the one named: another identity fails the handshake.
    let impostor = ValidatorKey::generate().unwrap().public_hex();
    let error = KeydKek::connect(address, &impostor, member.validator_signer())
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("handshake"), "{error}");

    // Nothing listening: named.
    let closed: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let error = KeydKek::connect(closed, &identity, member.validator_signer())
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("cannot reach the key manager at 127.0.0.1:1"),
        "{error}"
    );
}
