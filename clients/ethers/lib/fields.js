// Sensitive fields kept off the ledger in clear, for ethers.js applications: the same salted
// commitments and envelopes as the Rust crate trellis-confidential and `trellis field`, byte for
// byte (README "Sensitive fields"), so a field sealed here opens there and the other way round.
//
//   commitment = keccak256("trellis.field.v1" ‖ keccak256(label) ‖ salt ‖ keccak256(value))
//   envelope   = 0x01 ‖ commitment ‖ len(label) ‖ label ‖ n ‖ n × (address ‖ ephemeral key (33)
//                ‖ wrapped key (48)) ‖ nonce (12) ‖ AES-256-GCM(salt ‖ value) with its tag
//
// The content key is wrapped for each recipient under HMAC-SHA256(ECDH secret, "trellis.field.v1
// wrap" ‖ ephemeral key ‖ recipient key), the ECDH secret being SHA-256 of the shared point,
// compressed (as libsecp256k1 computes it).
import { createCipheriv, createDecipheriv, createHmac, createHash, randomBytes } from 'node:crypto';
import { ethers } from 'ethers';

const VERSION = 1;
const TAG = ethers.toUtf8Bytes('trellis.field.v1');
const WRAP_INFO = Buffer.from('trellis.field.v1 wrap');
const MAX_RECIPIENTS = 16;
const RECIPIENT = 20 + 33 + 48;

const bytes = (value) => Buffer.from(ethers.getBytes(value));

/** The commitment to `value` (bytes or text) of field `label` under `salt` (32 bytes). */
export function commitment(label, salt, value) {
  const data = typeof value === 'string' ? ethers.toUtf8Bytes(value) : value;
  return ethers.keccak256(
    ethers.concat([TAG, ethers.keccak256(ethers.toUtf8Bytes(label)), salt, ethers.keccak256(data)]),
  );
}

function checkLabel(label) {
  if (!/^[A-Za-z0-9._:-]{1,64}$/.test(label)) {
    throw new Error(`invalid field label ${JSON.stringify(label)}: use 1 to 64 letters, digits or . _ : -`);
  }
}

/** The ECDH secret of `privateKey` and `publicKey`, as libsecp256k1 gives it. */
function agree(privateKey, publicKey) {
  const point = bytes(new ethers.SigningKey(privateKey).computeSharedSecret(publicKey));
  const compressed = Buffer.concat([Buffer.from([0x02 | (point[64] & 1)]), point.subarray(1, 33)]);
  return createHash('sha256').update(compressed).digest();
}

function wrapKey(shared, ephemeral, recipient) {
  return createHmac('sha256', shared).update(WRAP_INFO).update(ephemeral).update(recipient).digest();
}

function encrypt(key, nonce, plaintext, aad) {
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad);
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

function decrypt(key, nonce, sealed, aad) {
  const decipher = createDecipheriv('aes-256-gcm', key, nonce);
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]);
}

/**
 * Seals `value` (text or bytes) of field `label` to `recipients` (compressed or uncompressed
 * secp256k1 public keys: each party and the auditor): the opening to keep, the commitment and
 * the envelope (hex) to put on chain.
 */
export function seal(label, value, recipients) {
  checkLabel(label);
  const data = Buffer.from(typeof value === 'string' ? ethers.toUtf8Bytes(value) : value);
  const keys = [...new Set(recipients.map((key) => ethers.SigningKey.computePublicKey(key, true)))];
  if (keys.length === 0 || keys.length > MAX_RECIPIENTS) {
    throw new Error(`an envelope needs 1 to ${MAX_RECIPIENTS} recipients, ${keys.length} given`);
  }
  const salt = randomBytes(32);
  const committed = commitment(label, salt, data);
  const content = randomBytes(32);
  const entries = keys.map((recipient) => {
    const ephemeral = new ethers.SigningKey(ethers.hexlify(randomBytes(32)));
    const ephemeralPublic = bytes(ephemeral.compressedPublicKey);
    const key = wrapKey(agree(ephemeral.privateKey, recipient), ephemeralPublic, bytes(recipient));
    const wrapped = encrypt(key, Buffer.alloc(12), content, bytes(committed));
    return Buffer.concat([bytes(ethers.computeAddress(recipient)), ephemeralPublic, wrapped]);
  });
  const nonce = randomBytes(12);
  const labelBytes = Buffer.from(label);
  const header = Buffer.concat([
    Buffer.from([VERSION]),
    bytes(committed),
    Buffer.from([labelBytes.length]),
    labelBytes,
    Buffer.from([entries.length]),
    ...entries,
    nonce,
  ]);
  const ciphertext = encrypt(content, nonce, Buffer.concat([salt, data]), header);
  return {
    opening: { label, value: ethers.hexlify(data), salt: ethers.hexlify(salt) },
    commitment: committed,
    envelope: ethers.hexlify(Buffer.concat([header, ciphertext])),
  };
}

/** Reads an envelope's fields, saying what is wrong with bytes that are not one. */
export function parseEnvelope(envelope) {
  const data = bytes(envelope);
  let at = 0;
  const take = (n, what) => {
    if (data.length < at + n) throw new Error(`malformed envelope: cut short in its ${what}`);
    const part = data.subarray(at, at + n);
    at += n;
    return part;
  };
  const version = take(1, 'version')[0];
  if (version !== VERSION) throw new Error(`malformed envelope: version ${version}; this reads ${VERSION}`);
  const committed = ethers.hexlify(take(32, 'commitment'));
  const label = take(take(1, 'label length')[0], 'label').toString('utf8');
  const count = take(1, 'recipient count')[0];
  const recipients = [];
  for (let i = 0; i < count; i += 1) {
    const entry = take(RECIPIENT, 'recipient');
    recipients.push({
      address: ethers.getAddress(ethers.hexlify(entry.subarray(0, 20))),
      ephemeral: entry.subarray(20, 53),
      wrapped: entry.subarray(53),
    });
  }
  const nonce = take(12, 'nonce');
  return { commitment: committed, label, recipients, nonce, header: data.subarray(0, at), ciphertext: data.subarray(at) };
}

/** The opening inside `envelope`, decrypted with recipient `privateKey` and checked. */
export function open(envelope, privateKey) {
  const parsed = parseEnvelope(envelope);
  const signing = new ethers.SigningKey(privateKey);
  const account = ethers.computeAddress(signing.publicKey);
  const entry = parsed.recipients.find((r) => r.address === account);
  if (!entry) throw new Error(`account ${account} is not a recipient of this envelope`);
  const key = wrapKey(agree(privateKey, ethers.hexlify(entry.ephemeral)), entry.ephemeral, bytes(signing.compressedPublicKey));
  const content = decrypt(key, Buffer.alloc(12), entry.wrapped, bytes(parsed.commitment));
  const plaintext = decrypt(content, parsed.nonce, parsed.ciphertext, parsed.header);
  const opening = {
    label: parsed.label,
    value: ethers.hexlify(plaintext.subarray(32)),
    salt: ethers.hexlify(plaintext.subarray(0, 32)),
  };
  if (commitment(opening.label, opening.salt, bytes(opening.value)) !== parsed.commitment) {
    throw new Error(`the opening does not match commitment ${parsed.commitment}`);
  }
  return opening;
}
