//! A finalized block as the node stores it: the block with one receipt record per transaction,
//! in the canonical encoding. The block archive, the transaction index and the log index all
//! read it; none of them depends on another through it.

use alloy_consensus::ReceiptEnvelope;
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_primitives::{Address, B256, TxHash};
use bytes::{Buf as _, BufMut};
use commonware_codec::{Buf, EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt, Write};
use trellis_execution::TxReceipt;
use trellis_types::{Block, BlockLimits};

/// What a receipt needs beyond its Ethereum envelope (status, gas, logs, bloom) to answer
/// `eth_getTransactionReceipt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptRecord {
    pub tx_hash: TxHash,
    pub from: Address,
    pub to: Option<Address>,
    pub contract_address: Option<Address>,
    pub gas_used: u64,
    pub effective_gas_price: u128,
    pub envelope: ReceiptEnvelope,
}

impl From<&TxReceipt> for ReceiptRecord {
    fn from(r: &TxReceipt) -> Self {
        Self {
            tx_hash: r.tx_hash,
            from: r.from,
            to: r.to,
            contract_address: r.contract_address,
            gas_used: r.gas_used,
            effective_gas_price: r.effective_gas_price,
            envelope: r.envelope.clone(),
        }
    }
}

/// The largest stored receipt envelope. Logs are bounded by gas (375 gas a topic, 8 a byte), so
/// a 60M-gas transaction cannot emit more than ~7.5 MB of log data.
const MAX_RECEIPT_BYTES: usize = 16 << 20;

fn write_address(address: &Option<Address>, buf: &mut impl BufMut) {
    match address {
        Some(a) => {
            buf.put_u8(1);
            buf.put_slice(a.as_slice());
        }
        None => buf.put_u8(0),
    }
}

fn read_address(buf: &mut impl Buf) -> Result<Option<Address>, CodecError> {
    match u8::read(buf)? {
        0 => Ok(None),
        1 => Ok(Some(Address::from(<[u8; 20]>::read(buf)?))),
        _ => Err(CodecError::Invalid("ReceiptRecord", "address tag")),
    }
}

impl Write for ReceiptRecord {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_slice(self.tx_hash.as_slice());
        buf.put_slice(self.from.as_slice());
        write_address(&self.to, buf);
        write_address(&self.contract_address, buf);
        self.gas_used.write(buf);
        self.effective_gas_price.write(buf);
        bytes::Bytes::from(self.envelope.encoded_2718()).write(buf);
    }
}

impl EncodeSize for ReceiptRecord {
    fn encode_size(&self) -> usize {
        let address = |a: &Option<Address>| 1 + a.map_or(0, |_| 20);
        let envelope = self.envelope.encode_2718_len();
        32 + 20
            + address(&self.to)
            + address(&self.contract_address)
            + 8
            + 16
            + envelope.encode_size()
            + envelope
    }
}

impl Read for ReceiptRecord {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let tx_hash = B256::from(<[u8; 32]>::read(buf)?);
        let from = Address::from(<[u8; 20]>::read(buf)?);
        let to = read_address(buf)?;
        let contract_address = read_address(buf)?;
        let gas_used = u64::read(buf)?;
        let effective_gas_price = u128::read(buf)?;
        let raw = bytes::Bytes::read_cfg(buf, &RangeCfg::new(..=MAX_RECEIPT_BYTES))?;
        let mut slice = raw.chunk();
        let envelope = ReceiptEnvelope::decode_2718(&mut slice)
            .map_err(|_| CodecError::Invalid("ReceiptRecord", "receipt envelope"))?;
        Ok(Self {
            tx_hash,
            from,
            to,
            contract_address,
            gas_used,
            effective_gas_price,
            envelope,
        })
    }
}

/// A finalized block with its receipts, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBlock {
    pub block: Block,
    pub receipts: Vec<ReceiptRecord>,
}

impl Write for StoredBlock {
    fn write(&self, buf: &mut impl BufMut) {
        self.block.write(buf);
        self.receipts.write(buf);
    }
}

impl EncodeSize for StoredBlock {
    fn encode_size(&self) -> usize {
        self.block.encode_size() + self.receipts.encode_size()
    }
}

impl Read for StoredBlock {
    type Cfg = BlockLimits;
    fn read_cfg(buf: &mut impl Buf, limits: &BlockLimits) -> Result<Self, CodecError> {
        let block = Block::read_cfg(buf, limits)?;
        let receipts = Vec::<ReceiptRecord>::read_cfg(
            buf,
            &(RangeCfg::new(..=block.transactions().len()), ()),
        )?;
        if receipts.len() != block.transactions().len() {
            return Err(CodecError::Invalid(
                "StoredBlock",
                "one receipt per transaction",
            ));
        }
        Ok(Self { block, receipts })
    }
}
