//! R21 with a software authenticator: each way an assertion can be for something else, or not
//! by the user, is refused; a property test flips every byte of a good assertion.

use super::*;
use p256::ecdsa::signature::Signer;
use proptest::prelude::*;

const ORIGIN: &str = "https://countersign.example";

fn relying_party() -> RelyingParty {
    RelyingParty { id: "countersign.example".into(), origins: vec![ORIGIN.into()] }
}

fn context(decision: Decision) -> StepUpContext<'static> {
    StepUpContext { request_id: "req-1", change_digest: "ab12", decision, nonce: "nonce-0123456789abcdef" }
}

fn es256_key() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap()
}

fn es256_public(key: &p256::ecdsa::SigningKey) -> CredentialPublicKey {
    CredentialPublicKey::Es256(key.verifying_key().to_encoded_point(false).as_bytes().to_vec())
}

struct Made {
    rp_id: String,
    origin: String,
    kind: String,
    challenge: String,
    flags: u8,
    count: u32,
}

impl Made {
    fn good(context: &StepUpContext<'_>) -> Self {
        Made {
            rp_id: "countersign.example".into(),
            origin: ORIGIN.into(),
            kind: "webauthn.get".into(),
            challenge: step_up_challenge_text(context),
            flags: FLAG_USER_PRESENT | FLAG_USER_VERIFIED,
            count: 41,
        }
    }

    fn parts(&self) -> (Vec<u8>, Vec<u8>) {
        let mut authenticator_data = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        authenticator_data.push(self.flags);
        authenticator_data.extend_from_slice(&self.count.to_be_bytes());
        let client_data = serde_json::json!({
            "type": self.kind, "challenge": self.challenge, "origin": self.origin, "crossOrigin": false,
        })
        .to_string()
        .into_bytes();
        (authenticator_data, client_data)
    }

    fn signed_message(authenticator_data: &[u8], client_data: &[u8]) -> Vec<u8> {
        let mut signed = authenticator_data.to_vec();
        signed.extend_from_slice(&Sha256::digest(client_data));
        signed
    }

    fn assertion(authenticator_data: &[u8], client_data: &[u8], signature: &[u8]) -> StepUpAssertion {
        StepUpAssertion {
            credential_id: "cred-1".into(),
            authenticator_data: URL_SAFE_NO_PAD.encode(authenticator_data),
            client_data_json: URL_SAFE_NO_PAD.encode(client_data),
            signature: URL_SAFE_NO_PAD.encode(signature),
        }
    }

    fn es256(&self, key: &p256::ecdsa::SigningKey) -> StepUpAssertion {
        let (authenticator_data, client_data) = self.parts();
        let signature: p256::ecdsa::Signature = key.sign(&Self::signed_message(&authenticator_data, &client_data));
        Self::assertion(&authenticator_data, &client_data, signature.to_der().as_bytes())
    }
}

#[test]
fn a_user_verified_assertion_over_the_decision_verifies_and_reports_its_counter() {
    let key = es256_key();
    let assertion = Made::good(&context(Decision::Approve)).es256(&key);
    let checked =
        check_step_up_assertion(&assertion, &es256_public(&key), &relying_party(), &context(Decision::Approve));
    assert_eq!(checked, Ok(CheckedAssertion { sign_count: 41 }));
}

#[test]
fn an_assertion_for_another_request_digest_decision_or_ceremony_is_refused() {
    let key = es256_key();
    let assertion = Made::good(&context(Decision::Approve)).es256(&key);
    let approve = context(Decision::Approve);
    let others = [
        StepUpContext { request_id: "req-2", ..approve.clone() },
        StepUpContext { change_digest: "ab13", ..approve.clone() },
        StepUpContext { decision: Decision::Reject, ..approve.clone() },
        StepUpContext { nonce: "nonce-other", ..approve.clone() },
    ];
    for other in others {
        assert_eq!(
            check_step_up_assertion(&assertion, &es256_public(&key), &relying_party(), &other),
            Err(StepUpError::WrongChallenge),
            "{other:?}"
        );
    }
}

#[test]
fn the_challenge_parts_cannot_be_shifted_into_one_another() {
    let a = StepUpContext { request_id: "req-1\nab", change_digest: "12", ..context(Decision::Approve) };
    let b = StepUpContext { request_id: "req-1", change_digest: "ab\n12", ..context(Decision::Approve) };
    let c = StepUpContext { change_digest: "12approve", ..context(Decision::Approve) };
    let d = StepUpContext { change_digest: "12", nonce: "approvenonce-0123456789abcdef", ..context(Decision::Approve) };
    assert_ne!(step_up_challenge(&a), step_up_challenge(&b));
    assert_ne!(step_up_challenge(&c), step_up_challenge(&d));
    assert_ne!(step_up_challenge(&context(Decision::Approve)), step_up_challenge(&context(Decision::Reject)));
}

#[test]
fn without_user_verification_or_presence_the_assertion_is_refused() {
    let key = es256_key();
    for flags in [FLAG_USER_PRESENT, FLAG_USER_VERIFIED, 0] {
        let assertion = Made { flags, ..Made::good(&context(Decision::Approve)) }.es256(&key);
        assert_eq!(
            check_step_up_assertion(&assertion, &es256_public(&key), &relying_party(), &context(Decision::Approve)),
            Err(StepUpError::NotUserVerified),
            "flags {flags:#x}"
        );
    }
}

#[test]
fn another_site_relying_party_or_ceremony_type_is_refused() {
    let key = es256_key();
    let good = || Made::good(&context(Decision::Approve));
    let check = |made: Made| {
        check_step_up_assertion(&made.es256(&key), &es256_public(&key), &relying_party(), &context(Decision::Approve))
    };
    assert_eq!(
        check(Made { origin: "https://evil.example".into(), ..good() }),
        Err(StepUpError::WrongOrigin("https://evil.example".into()))
    );
    assert_eq!(check(Made { rp_id: "evil.example".into(), ..good() }), Err(StepUpError::WrongRelyingParty));
    assert_eq!(
        check(Made { kind: "webauthn.create".into(), ..good() }),
        Err(StepUpError::WrongType("webauthn.create".into()))
    );
}

#[test]
fn a_signature_by_another_key_is_refused() {
    let other = p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).unwrap();
    let assertion = Made::good(&context(Decision::Approve)).es256(&other);
    assert_eq!(
        check_step_up_assertion(&assertion, &es256_public(&es256_key()), &relying_party(), &context(Decision::Approve)),
        Err(StepUpError::Signature)
    );
}

#[test]
fn ed25519_passkeys_verify_too() {
    let key = ed25519_dalek::SigningKey::from_bytes(&[5u8; 32]);
    let (authenticator_data, client_data) = Made::good(&context(Decision::Reject)).parts();
    let signature = ed25519_dalek::Signer::sign(&key, &Made::signed_message(&authenticator_data, &client_data));
    let assertion = Made::assertion(&authenticator_data, &client_data, &signature.to_bytes());
    let public = CredentialPublicKey::Ed25519(key.verifying_key().to_bytes());
    assert!(check_step_up_assertion(&assertion, &public, &relying_party(), &context(Decision::Reject)).is_ok());
    assert_eq!(
        check_step_up_assertion(&assertion, &public, &relying_party(), &context(Decision::Approve)),
        Err(StepUpError::WrongChallenge)
    );
}

#[test]
fn public_keys_round_trip_through_their_text_and_junk_is_refused() {
    let public = es256_public(&es256_key());
    assert_eq!(CredentialPublicKey::parse(&public.to_text()), Ok(public));
    let ed = CredentialPublicKey::Ed25519([3u8; 32]);
    assert_eq!(CredentialPublicKey::parse(&ed.to_text()), Ok(ed));
    for junk in ["", "es256", "es256:zz", "es256:0400", "ed25519:00", "rs256:00"] {
        assert!(CredentialPublicKey::parse(junk).is_err(), "{junk}");
    }
}

#[test]
fn malformed_fields_are_refused_not_panicked_on() {
    let key = es256_key();
    let good = Made::good(&context(Decision::Approve)).es256(&key);
    let cases = [
        StepUpAssertion { authenticator_data: "!!".into(), ..good.clone() },
        StepUpAssertion { authenticator_data: URL_SAFE_NO_PAD.encode([0u8; 10]), ..good.clone() },
        StepUpAssertion { client_data_json: URL_SAFE_NO_PAD.encode(b"not json"), ..good.clone() },
        StepUpAssertion { signature: String::new(), ..good.clone() },
    ];
    for case in cases {
        let result = check_step_up_assertion(&case, &es256_public(&key), &relying_party(), &context(Decision::Approve));
        assert!(result.is_err(), "{case:?}");
    }
}

proptest! {
    /// Any change to any byte of a good assertion, or of what it is checked against, is refused.
    #[test]
    fn every_flipped_byte_is_refused(field in 0usize..3, position in any::<prop::sample::Index>(), bit in 0u8..8) {
        let key = es256_key();
        let (mut authenticator_data, mut client_data) = Made::good(&context(Decision::Approve)).parts();
        let signature: p256::ecdsa::Signature =
            key.sign(&Made::signed_message(&authenticator_data, &client_data));
        let mut signature = signature.to_der().as_bytes().to_vec();
        let target = match field { 0 => &mut authenticator_data, 1 => &mut client_data, _ => &mut signature };
        let at = position.index(target.len());
        target[at] ^= 1 << bit;
        let assertion = Made::assertion(&authenticator_data, &client_data, &signature);
        prop_assert!(check_step_up_assertion(
            &assertion, &es256_public(&key), &relying_party(), &context(Decision::Approve)
        ).is_err());
    }
}
