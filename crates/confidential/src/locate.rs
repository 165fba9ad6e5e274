//! Where a commitment or an envelope sits in a finalized transaction: its input, or one of its
//! logs.

use crate::{Commitment, Envelope};
use alloy_primitives::Log;

/// Where [`locate`] found a commitment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// In the transaction's input (a call's arguments).
    Input,
    /// In a log's topics or data: the log's index in the transaction.
    Log(usize),
}

/// Where `commitment` appears in a transaction with `input` and `logs`, if anywhere. A
/// commitment is 32 random-looking bytes: it appears by chance in no other data.
pub fn locate(commitment: &Commitment, input: &[u8], logs: &[Log]) -> Option<Found> {
    let needle = commitment.0.as_slice();
    let contains = |haystack: &[u8]| haystack.windows(32).any(|window| window == needle);
    if contains(input) {
        return Some(Found::Input);
    }
    logs.iter()
        .position(|log| log.topics().contains(&commitment.0) || contains(&log.data.data))
        .map(Found::Log)
}

/// The envelopes a transaction carries as ABI-encoded `bytes` arguments: in its input (after
/// the 4-byte selector) or in its logs' data, in that order, each once.
pub fn envelopes(input: &[u8], logs: &[Log]) -> Vec<Envelope> {
    let mut found = Vec::new();
    let arguments = input.get(4..).unwrap_or_default();
    for data in std::iter::once(arguments).chain(logs.iter().map(|log| &log.data.data[..])) {
        for envelope in abi_bytes(data).filter_map(|bytes| Envelope::from_bytes(bytes).ok()) {
            if !found.contains(&envelope) {
                found.push(envelope);
            }
        }
    }
    found
}

/// Every stretch of `data` laid out as an ABI `bytes` value: a 32-byte word holding a length
/// `n`, then `n` bytes, at a word boundary.
fn abi_bytes(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    (0..data.len() / 32).filter_map(move |word| {
        let start = word * 32;
        let length_word = &data[start..start + 32];
        // A length fits in 8 bytes; higher bytes set mean this word is something else.
        if length_word[..24].iter().any(|&b| b != 0) {
            return None;
        }
        let length = u64::from_be_bytes(length_word[24..].try_into().expect("8 bytes"));
        let end = (start + 32).checked_add(usize::try_from(length).ok()?)?;
        (length > 0).then(|| data.get(start + 32..end)).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Opening;
    use alloy_primitives::{Address, B256, LogData};

    #[test]
    fn found_in_input_topics_or_data_and_nowhere_else() {
        let commitment = Opening::new("a".parse().unwrap(), b"v".to_vec())
            .unwrap()
            .commitment();
        let mut input = vec![0xa9, 0x05, 0x9c, 0xbb];
        input.extend_from_slice(commitment.0.as_slice());
        assert_eq!(locate(&commitment, &input, &[]), Some(Found::Input));
        let log = |topics: Vec<B256>, data: Vec<u8>| Log {
            address: Address::ZERO,
            data: LogData::new_unchecked(topics, data.into()),
        };
        let logs = [
            log(vec![B256::ZERO], vec![]),
            log(vec![B256::ZERO, commitment.0], vec![]),
        ];
        assert_eq!(locate(&commitment, &[], &logs), Some(Found::Log(1)));
        let mut data = vec![0u8; 7];
        data.extend_from_slice(commitment.0.as_slice());
        let logs = [log(vec![], data)];
        assert_eq!(locate(&commitment, &[1, 2], &logs), Some(Found::Log(0)));
        assert_eq!(locate(&commitment, &input[..30], &[]), None);
    }

    #[test]
    fn envelopes_are_found_in_abi_encoded_arguments_and_event_data() {
        let key = trellis_crypto::AccountKey::generate().unwrap();
        let opening = Opening::new("a".parse().unwrap(), b"secret".to_vec()).unwrap();
        let envelope = Envelope::seal(&opening, &[key.public_key()]).unwrap();
        let bytes = envelope.to_bytes();
        // record(bytes32 id, bytes32 commitment, bytes envelope): head words, then the tail.
        let mut arguments = vec![0x11; 4];
        arguments.extend_from_slice(&[7u8; 32]);
        arguments.extend_from_slice(opening.commitment().0.as_slice());
        let mut offset = [0u8; 32];
        offset[31] = 96;
        arguments.extend_from_slice(&offset);
        let mut length = [0u8; 32];
        length[24..].copy_from_slice(&(bytes.len() as u64).to_be_bytes());
        arguments.extend_from_slice(&length);
        arguments.extend_from_slice(&bytes);
        arguments.resize(4 + (arguments.len() - 4).div_ceil(32) * 32, 0);
        assert_eq!(envelopes(&arguments, &[]), vec![envelope.clone()]);
        let log = Log {
            address: Address::ZERO,
            data: LogData::new_unchecked(vec![], arguments[4..].to_vec().into()),
        };
        assert_eq!(
            envelopes(&[], std::slice::from_ref(&log)),
            vec![envelope.clone()]
        );
        assert_eq!(envelopes(&arguments, &[log]).len(), 1, "each once");
        assert!(envelopes(&arguments[..100], &[]).is_empty());
    }
}
