//! Keys generated in and used through a real PKCS#11 module: SoftHSM2.

mod common;

use alloy_consensus::crypto::secp256k1::recover_signer;
use alloy_primitives::{U256, keccak256};
use common::{PIN, TOKEN, in_softhsm};
use commonware_codec::DecodeExt;
use commonware_cryptography::{Verifier, ed25519};
use std::path::Path;
use trellis_hsm::{Ed25519Key, HsmError, Pin, Secp256k1Key, Token};

#[test]
fn ed25519_signatures_made_in_the_token_verify_as_consensus_signatures() {
    in_softhsm(
        "ed25519_signatures_made_in_the_token_verify_as_consensus_signatures",
        |hsm| {
            let token = hsm.token();
            let key = Ed25519Key::generate(&token, "validator").unwrap();
            let public = ed25519::PublicKey::decode(key.public_key().to_vec()).unwrap();
            // commonware signs namespace-framed messages: the token signs the framed bytes.
            let payload = commonware_utils::union_unique(b"trellis-vote", b"block 7");
            let signature =
                ed25519::Signature::decode(key.sign(&payload).unwrap().to_vec()).unwrap();
            assert!(public.verify(b"trellis-vote", b"block 7", &signature));
            assert!(!public.verify(b"trellis-vote", b"block 8", &signature));

            // Found again by label, in a new token handle, with the same public key.
            let again = Ed25519Key::open(&hsm.token(), "validator").unwrap();
            assert_eq!(again.public_key(), key.public_key());
            assert!(format!("{again:?}").contains(&hex::encode(key.public_key())));
        },
    );
}

#[test]
fn secp256k1_signatures_are_low_s_and_recover_to_the_keys_address() {
    in_softhsm(
        "secp256k1_signatures_are_low_s_and_recover_to_the_keys_address",
        |hsm| {
            let token = hsm.token();
            let key = Secp256k1Key::generate(&token, "alice").unwrap();
            let half_order = U256::from_str_radix(
                "7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0",
                16,
            )
            .unwrap();
            let mut parities = [0usize; 2];
            for i in 0..64u32 {
                let hash = keccak256(i.to_be_bytes());
                let signature = key.sign_hash(hash).unwrap();
                assert!(signature.s() <= half_order, "signature {i} has a high s");
                assert_eq!(recover_signer(&signature, hash).unwrap(), key.address());
                parities[usize::from(signature.v())] += 1;
            }
            // Both parities occur: the recovery id is found, not assumed.
            assert!(parities[0] > 0 && parities[1] > 0, "{parities:?}");
            let again = Secp256k1Key::open(&hsm.token(), "alice").unwrap();
            assert_eq!(again.address(), key.address());
        },
    );
}

#[test]
fn private_keys_cannot_be_read_out_of_the_token() {
    in_softhsm("private_keys_cannot_be_read_out_of_the_token", |hsm| {
        use cryptoki::object::{Attribute, AttributeInfo, AttributeType, ObjectClass};
        let token = hsm.token();
        Ed25519Key::generate(&token, "validator").unwrap();
        Secp256k1Key::generate(&token, "alice").unwrap();
        // Look with a separate, plain PKCS#11 session, as any other program on the host could.
        let context = cryptoki::context::Pkcs11::new(hsm.module()).unwrap();
        let _ = context.initialize(cryptoki::context::CInitializeArgs::new(
            cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
        ));
        let slot = context.get_slots_with_token().unwrap()[0];
        let session = context.open_ro_session(slot).unwrap();
        let _ = session.login(
            cryptoki::session::UserType::User,
            Some(&PIN.to_string().into()),
        );
        let private = session
            .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
            .unwrap();
        assert_eq!(private.len(), 2);
        for handle in private {
            let info = session
                .get_attribute_info(handle, &[AttributeType::Value])
                .unwrap();
            assert!(matches!(info[0], AttributeInfo::Sensitive), "{info:?}");
            let flags = session
                .get_attributes(
                    handle,
                    &[AttributeType::Extractable, AttributeType::Sensitive],
                )
                .unwrap();
            assert!(flags.contains(&Attribute::Extractable(false)), "{flags:?}");
            assert!(flags.contains(&Attribute::Sensitive(true)), "{flags:?}");
        }
    });
}

#[test]
fn configuration_mistakes_get_precise_errors() {
    in_softhsm("configuration_mistakes_get_precise_errors", |hsm| {
        let module = hsm.module();
        let error = Token::open(module, TOKEN, Pin::new("0000")).unwrap_err();
        assert!(matches!(error, HsmError::WrongPin { .. }), "{error}");
        assert!(error.to_string().contains("PIN"), "{error}");

        let error = Token::open(module, "no-such-token", Pin::new(PIN)).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("no-such-token") && text.contains(TOKEN),
            "{text}"
        );

        let not_a_library = hsm.pin_file("not-a-module.so", "hello");
        let error = Token::open(&not_a_library, TOKEN, Pin::new(PIN)).unwrap_err();
        assert!(matches!(error, HsmError::NotAModule { .. }), "{error}");
        let error =
            Token::open(Path::new("/nonexistent/libpkcs11.so"), TOKEN, Pin::new(PIN)).unwrap_err();
        assert!(
            error.to_string().contains("is not a PKCS#11 module"),
            "{error}"
        );

        let empty = hsm.pin_file("empty-pin", "");
        assert!(matches!(
            Pin::from_file(&empty),
            Err(HsmError::EmptyPin { .. })
        ));
        assert!(matches!(
            Pin::from_file(&hsm.dir.join("missing-pin")),
            Err(HsmError::PinFile { .. })
        ));
        let good = hsm.pin_file("pin", PIN);
        let token = Token::open(module, TOKEN, Pin::from_file(&good).unwrap()).unwrap();

        let error = Ed25519Key::open(&token, "nobody").unwrap_err();
        assert!(matches!(error, HsmError::KeyNotFound { .. }), "{error}");
        Ed25519Key::generate(&token, "validator").unwrap();
        let error = Ed25519Key::generate(&token, "validator").unwrap_err();
        assert!(matches!(error, HsmError::LabelTaken { .. }), "{error}");
        let error = Secp256k1Key::open(&token, "validator").unwrap_err();
        assert!(matches!(error, HsmError::WrongKeyKind { .. }), "{error}");
    });
}

#[test]
fn imported_keys_sign_exactly_as_their_files_did() {
    in_softhsm("imported_keys_sign_exactly_as_their_files_did", |hsm| {
        use commonware_cryptography::Signer as _;
        use trellis_crypto::{AccountKey, ValidatorKey, ValidatorSigner};
        let token = hsm.token();
        let file = ValidatorKey::from_bytes(&[9; 32]);
        let public: [u8; 32] = file.validator_id().0;
        let seed: [u8; 32] = hex::decode(&file.secret_hex()[2..])
            .unwrap()
            .try_into()
            .unwrap();
        let key = Ed25519Key::import(&token, "moved", &seed, &public).unwrap();
        assert_eq!(key.public_key(), public);
        // Ed25519 is deterministic: the token's signature is byte for byte the file key's.
        let device = ValidatorSigner::device(std::sync::Arc::new(key)).unwrap();
        let memory = file.validator_signer();
        assert_eq!(device.public_key(), memory.public_key());
        assert_eq!(device.sign(b"ns", b"vote"), memory.sign(b"ns", b"vote"));
        assert_eq!(device.validator_id(), file.validator_id());

        let account = AccountKey::from_seed(3);
        let secret: [u8; 32] = hex::decode(&account.secret_hex()[2..])
            .unwrap()
            .try_into()
            .unwrap();
        let moved = Secp256k1Key::import(&token, "account", &secret).unwrap();
        assert_eq!(moved.address(), account.address());
        let hash = keccak256(b"transfer");
        assert_eq!(
            recover_signer(&moved.sign_hash(hash).unwrap(), hash).unwrap(),
            account.address()
        );
    });
}

#[test]
fn a_token_that_goes_away_stops_signing_and_signs_again_when_it_returns() {
    in_softhsm(
        "a_token_that_goes_away_stops_signing_and_signs_again_when_it_returns",
        |hsm| {
            use commonware_cryptography::Signer as _;
            use trellis_crypto::ValidatorSigner;
            let token = hsm.token();
            let key = Ed25519Key::generate(&token, "validator").unwrap();
            let signer = ValidatorSigner::device(std::sync::Arc::new(key)).unwrap();
            assert!(signer.try_sign(b"ns", b"before").is_some());

            // The token's storage goes away, as an unplugged HSM's would.
            let tokens = hsm.dir.join("tokens");
            let away = hsm.dir.join("away");
            std::fs::rename(&tokens, &away).unwrap();
            assert!(
                signer.try_sign(b"ns", b"during").is_none(),
                "signed without its token"
            );
            assert!(signer.try_sign(b"ns", b"during again").is_none());
            assert!(signer.is_failing());
            assert_eq!(signer.failures(), 2);
            // What the p2p handshake gets meanwhile verifies for nothing.
            let public = signer.public_key();
            assert!(!commonware_cryptography::Verifier::verify(
                &public,
                b"ns",
                b"handshake",
                &signer.sign(b"ns", b"handshake")
            ));

            std::fs::rename(&away, &tokens).unwrap();
            // Re-attaching is tried at most once a second: signing resumes within about that.
            let back = std::time::Instant::now();
            let signature = loop {
                if let Some(signature) = signer.try_sign(b"ns", b"after") {
                    break signature;
                }
                assert!(
                    back.elapsed().as_secs() < 5,
                    "no signature 5 s after the token returned"
                );
                std::thread::sleep(std::time::Duration::from_millis(100));
            };
            assert!(commonware_cryptography::Verifier::verify(
                &public, b"ns", b"after", &signature
            ));
            assert!(!signer.is_failing());
        },
    );
}
