//! Access control on a node's API: a governed chain's node asks callers for API tokens
//! (`api_access = "tokens"`). Callers without one read blocks only (`api_public = "blocks"`);
//! a member's token opens its reads and transactions, an auditor's everything; forged, expired,
//! foreign and unreadable tokens are refused and recorded; a flood is held to its caller's rate
//! while others pass; and a frozen account's token stops working from the block that froze it.
//! ethers.js and web3.py, signing their own tokens, call such a node.

mod support;

use serde_json::{Value, json};
use std::{path::Path, process::Command, time::Duration};
use support::{
    NodeProcess,
    clients::{npm_ethers, run, web3py},
    network::TestNetwork,
    post_to, rpc_request_as,
};
use trellis_node::genesis_file::GenesisFile;

const CHAIN_ID: u64 = 4848;
/// Calls a second per caller: the burst is twice that.
const RATE: u64 = 50;
/// An account whose identity is a member but no auditor.
const MEMBER: usize = 5;
/// An auditor (every generated identity is one, but for [`MEMBER`]'s).
const AUDITOR: usize = 3;

/// `trellis api token` for account `account` of the network, valid for `valid_for`.
fn token(network: &TestNetwork, account: usize, chain_id: u64, valid_for: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args(["api", "token", "--key"])
        .arg(network.dir.join("accounts.json"))
        .args(["--from", &network.accounts[account].address().to_string()])
        .args([
            "--chain-id",
            &chain_id.to_string(),
            "--valid-for",
            valid_for,
        ])
        .output()
        .expect("run trellis api token");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "trellis api token: {said}");
    assert!(said.contains("API token of account"), "{said}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The error of a refused call: its code, message and data.
fn refusal(response: &Value) -> (i64, String, Value) {
    let error = &response["error"];
    assert!(error.is_object(), "not refused: {response}");
    let message = error["message"].as_str().unwrap_or_default().to_owned();
    (
        error["code"].as_i64().unwrap(),
        message,
        error["data"].clone(),
    )
}

fn ok(response: &Value) -> &Value {
    assert!(response.get("error").is_none(), "refused: {response}");
    &response["result"]
}

/// Takes the auditor role from account `account`'s identity before the chain starts.
fn no_auditor_role(network: &TestNetwork, account: usize) {
    let path = network.configs[0].with_file_name("genesis.toml");
    let mut genesis = GenesisFile::load(&path).unwrap();
    let address = network.accounts[account].address();
    let identity = genesis.organisations[0]
        .identities
        .iter_mut()
        .find(|identity| identity.accounts.contains(&address))
        .unwrap();
    identity.roles.retain(|role| role != "auditor");
    std::fs::remove_file(&path).unwrap();
    genesis.write_new(&path).unwrap();
}

fn ask_tokens(config: &Path) {
    let mut text = std::fs::read_to_string(config).unwrap();
    let metrics = std::net::SocketAddr::from(([127, 0, 0, 1], support::free_ports(1)));
    text.push_str(&format!(
        "api_access = \"tokens\"\napi_public = \"blocks\"\napi_rate = {RATE}\nmetrics_addr = \"{metrics}\"\n"
    ));
    std::fs::write(config, text).unwrap();
}

/// `trellis gov ARGS` through `node` with API token `token` (or none), signed by governor
/// `governor`.
fn gov(
    network: &TestNetwork,
    node: &NodeProcess,
    token: Option<&str>,
    governor: usize,
    args: &[&str],
) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trellis"));
    command
        .args(["gov", args[0], "--rpc", &format!("http://{}", node.rpc)])
        .arg("--key")
        .arg(network.dir.join("accounts.json"))
        .args(["--from", &network.accounts[governor].address().to_string()])
        .args(&args[1..])
        .env_remove("TRELLIS_API_TOKEN");
    if let Some(token) = token {
        command.env("TRELLIS_API_TOKEN", token);
    }
    let out = command.output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), said)
}

fn batch(node: &NodeProcess, token: &str, calls: u64) -> Vec<Value> {
    let body: Vec<Value> = (0..calls)
        .map(|id| json!({"jsonrpc": "2.0", "id": id, "method": "eth_blockNumber", "params": []}))
        .collect();
    let (_, answer) = post_to(node.rpc, "/", Some(token), &Value::from(body).to_string());
    match serde_json::from_str::<Value>(&answer).unwrap() {
        Value::Array(answers) => answers,
        single => vec![single],
    }
}

/// A governed one-validator network whose node asks for tokens, [`MEMBER`] no auditor.
fn token_network(dir: &Path) -> (TestNetwork, NodeProcess) {
    let network = TestNetwork::governed(dir, CHAIN_ID, (1, 0), 6, 1_000);
    no_auditor_role(&network, MEMBER);
    ask_tokens(&network.configs[0]);
    let node = network.start(0);
    (network, node)
}

#[test]
fn callers_read_what_their_standing_on_chain_allows() {
    let dir = tempfile::tempdir().unwrap();
    let (network, node) = token_network(dir.path());
    let member_address = network.accounts[MEMBER].address().to_string();
    let balance = json!([member_address, "latest"]);

    // Without a token: blocks, not state nor full transactions.
    ok(&rpc_request_as(
        node.rpc,
        None,
        "eth_blockNumber",
        json!([]),
    ));
    ok(&rpc_request_as(
        node.rpc,
        None,
        "eth_getBlockByNumber",
        json!(["0x0", false]),
    ));
    let (code, message, data) = refusal(&rpc_request_as(
        node.rpc,
        None,
        "eth_getBalance",
        balance.clone(),
    ));
    assert_eq!(code, 4100);
    assert!(
        message.contains("eth_getBalance needs the permission read:state, which members hold"),
        "{message}"
    );
    assert!(message.contains("carries no API token"), "{message}");
    assert_eq!(data["permission"], "read:state");
    let full = rpc_request_as(node.rpc, None, "eth_getBlockByNumber", json!(["0x0", true]));
    assert!(refusal(&full).1.contains("read:all-transactions"));

    // A member reads state; the audit methods are the auditors'.
    let member = token(&network, MEMBER, CHAIN_ID, "1h");
    ok(&rpc_request_as(
        node.rpc,
        Some(&member),
        "eth_getBalance",
        balance.clone(),
    ));
    let (code, message, _) = refusal(&rpc_request_as(
        node.rpc,
        Some(&member),
        "trellis_keyActivity",
        json!([member_address]),
    ));
    assert_eq!(code, 4100);
    assert!(
        message.contains("needs the permission read:audit, which auditors hold"),
        "{message}"
    );
    assert!(
        message.contains("does not hold the auditor role"),
        "{message}"
    );
    // The token may ride in the URL instead (a wallet's RPC URL).
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance", "params": balance})
        .to_string();
    let (_, answer) = post_to(node.rpc, &format!("/?token={member}"), None, &body);
    ok(&serde_json::from_str(&answer).unwrap());

    // An auditor reads everything.
    let auditor = token(&network, AUDITOR, CHAIN_ID, "1h");
    ok(&rpc_request_as(
        node.rpc,
        Some(&auditor),
        "trellis_keyActivity",
        json!([member_address]),
    ));
    ok(&rpc_request_as(
        node.rpc,
        Some(&auditor),
        "eth_getBlockByNumber",
        json!(["0x0", true]),
    ));

    // Bad tokens: refused, saying why.
    let claimed = network.accounts[MEMBER]
        .address()
        .to_string()
        .to_lowercase();
    let other = network.accounts[4].address().to_string().to_lowercase();
    let forged = member.replace(&claimed, &other);
    assert_ne!(forged, member, "the token names its account");
    let foreign = token(&network, MEMBER, CHAIN_ID + 1, "1h");
    let short = token(&network, MEMBER, CHAIN_ID, "1s");
    std::thread::sleep(Duration::from_millis(2_100));
    for (bad, why) in [
        (forged.as_str(), "forged or altered"),
        (
            foreign.as_str(),
            "is for chain 4849, this node serves chain 4848",
        ),
        (short.as_str(), "expired"),
        ("nonsense", "malformed"),
    ] {
        let (code, message, _) = refusal(&rpc_request_as(
            node.rpc,
            Some(bad),
            "eth_blockNumber",
            json!([]),
        ));
        assert_eq!(code, 4100, "{message}");
        assert!(message.contains(why), "{bad}: {message}");
    }

    // A flood: the member's burst, then its next batch refused with a time to come back; the
    // auditor is untouched. A batch beyond the burst can never pass.
    let burst = 2 * RATE;
    let passed = batch(&node, &member, burst);
    assert!(
        passed.iter().all(|answer| answer.get("error").is_none()),
        "{passed:?}"
    );
    let held = batch(&node, &member, burst);
    let (code, message, data) = refusal(&held[0]);
    assert_eq!(code, -32005, "{message}");
    assert!(
        data["retryAfterMs"].as_u64().is_some_and(|ms| ms > 0),
        "{data}"
    );
    ok(&rpc_request_as(
        node.rpc,
        Some(&auditor),
        "eth_blockNumber",
        json!([]),
    ));
    let too_big = batch(&node, &auditor, burst + 1);
    assert!(refusal(&too_big[0]).1.contains("split it"), "{too_big:?}");

    // Governance through the CLI: refused without a token, naming the permission; with one,
    // the governors freeze the member, whose token is refused from then on.
    let freeze = ["propose", "freeze", member_address.as_str()];
    let (passed, said) = gov(&network, &node, None, 0, &freeze);
    assert!(!passed && said.contains("needs the permission"), "{said}");
    // Log filters installed now report what each caller's scope holds (the member's bucket,
    // emptied above, refills within two seconds).
    std::thread::sleep(Duration::from_millis(2_100));
    let install = |token: &str| {
        let filter = json!([{"fromBlock": "latest"}]);
        let id = rpc_request_as(node.rpc, Some(token), "eth_newFilter", filter);
        ok(&id).as_str().unwrap().to_owned()
    };
    let filters = [(install(&auditor), &auditor), (install(&member), &member)];
    let (passed, said) = gov(&network, &node, Some(&auditor), 0, &freeze);
    assert!(passed && said.contains("proposal 1 made"), "{said}");

    // A member sees its own transactions only: not a governor's proposal, nor its events,
    // which the auditor sees.
    let proposal = said
        .split("transaction ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no transaction in {said}"));
    let receipt = json!([proposal]);
    ok(&rpc_request_as(
        node.rpc,
        Some(&auditor),
        "eth_getTransactionReceipt",
        receipt.clone(),
    ));
    for method in ["eth_getTransactionReceipt", "eth_getTransactionByHash"] {
        let (code, message, _) = refusal(&rpc_request_as(
            node.rpc,
            Some(&member),
            method,
            receipt.clone(),
        ));
        assert_eq!(code, 4100);
        assert!(
            message.contains("is neither from nor to account"),
            "{message}"
        );
        assert!(message.contains("read:all-transactions"), "{message}");
    }
    let everything = json!([{"fromBlock": "0x0", "toBlock": "latest"}]);
    let seen = |token: &str| {
        let logs = rpc_request_as(node.rpc, Some(token), "eth_getLogs", everything.clone());
        ok(&logs).as_array().unwrap().len()
    };
    assert!(seen(&auditor) >= 1, "the proposal's events");
    assert_eq!(seen(&member), 0, "a member saw logs that do not name it");
    let polled = filters.map(|(id, token)| {
        let changes = rpc_request_as(node.rpc, Some(token), "eth_getFilterChanges", json!([id]));
        ok(&changes).as_array().unwrap().len()
    });
    assert!(
        polled[0] >= 1,
        "the auditor's filter saw the proposal's events"
    );
    assert_eq!(
        polled[1], 0,
        "the member's filter saw logs that do not name it"
    );
    let (passed, said) = gov(&network, &node, Some(&auditor), 1, &["vote", "1"]);
    assert!(
        passed && said.contains("passed and was carried out"),
        "{said}"
    );
    let (code, message, _) = refusal(&rpc_request_as(
        node.rpc,
        Some(&member),
        "eth_getBalance",
        balance,
    ));
    assert_eq!(code, 4100);
    assert!(message.contains("is frozen (by proposal 1"), "{message}");

    // Calls are counted by what their caller is; refusals by their code.
    let (_, scrape) = support::get(node.metrics.unwrap(), "/metrics");
    let calls = |labels: &str| support::sample_with(&scrape, "trellis_rpc_calls_total", labels);
    assert!(calls("method=\"eth_getBalance\",status=\"ok\",caller=\"member\"") >= 1.0);
    assert!(calls("method=\"eth_getBalance\",status=\"4100\",caller=\"public\"") >= 1.0);
    assert!(calls("method=\"eth_blockNumber\",status=\"-32005\",caller=\"member\"") >= 1.0);

    // Every refusal is in the node's audit log.
    let log = network.configs[0]
        .with_file_name("data")
        .join("audit.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("\"api_call_refused\""), "{text}");
    assert!(text.contains("\"api_token_refused\""), "{text}");
    assert!(text.contains("forged or altered"), "{text}");
    // So are reads of protected data: who read what, counted per window.
    let started = std::time::Instant::now();
    let read_by_member = |text: &str| {
        text.lines().any(|line| {
            line.contains(r#""kind":"api_reads""#)
                && line.contains(&member_address)
                && line.contains(r#""method":"eth_getBalance""#)
        })
    };
    while !read_by_member(&std::fs::read_to_string(&log).unwrap()) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no api_reads record of the member's eth_getBalance"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// ethers.js signs the member's token itself (`signMessage`), is refused without it, reads and
/// transfers with it in a header, and subscribes over WebSocket with it in the URL; web3.py
/// does the same over HTTP with eth_account's `sign_message`.
#[test]
fn real_clients_sign_their_own_tokens_and_call_over_http_and_websocket() {
    let dir = tempfile::tempdir().unwrap();
    let (network, node) = token_network(dir.path());
    let key = network.accounts[MEMBER].secret_hex();
    let mut command = npm_ethers(&node, &["run", "test:access", "--silent"], &key);
    command.env("TRELLIS_CHAIN_ID", CHAIN_ID.to_string());
    run("ethers.js with API tokens", command);
    let key = network.accounts[MEMBER - 1].secret_hex();
    let mut command = web3py(&node, "test_access.py", &key);
    command.env("TRELLIS_CHAIN_ID", CHAIN_ID.to_string());
    run("web3.py with API tokens", command);
    assert!(!node.logged("panicked"), "the node panicked");
}

alloy_sol_types::sol! {
    function record(bytes32 id, bytes32 commitment, bytes envelope);
}

/// Signs and sends a transaction of account `from` with `token`; its receipt, once mined.
fn send_as(
    network: &TestNetwork,
    node: &NodeProcess,
    token: &str,
    (from, nonce): (usize, u64),
    to: alloy_primitives::TxKind,
    input: Vec<u8>,
) -> Value {
    let raw = network.accounts[from].sign_transaction(alloy_consensus::TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 3_000_000,
        to,
        input: input.into(),
        ..Default::default()
    });
    let sent = rpc_request_as(
        node.rpc,
        Some(token),
        "eth_sendRawTransaction",
        json!([raw.to_string()]),
    );
    let hash = ok(&sent).clone();
    let started = std::time::Instant::now();
    loop {
        let answer = rpc_request_as(
            node.rpc,
            Some(token),
            "eth_getTransactionReceipt",
            json!([hash]),
        );
        let receipt = ok(&answer);
        if !receipt.is_null() {
            assert_eq!(receipt["status"], "0x1", "{receipt}");
            return receipt.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no receipt for {hash}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Moves account `account` into the identity of account `of` before the chain starts (its own
/// identity goes).
fn join_identity(network: &TestNetwork, account: usize, of: usize) {
    let path = network.configs[0].with_file_name("genesis.toml");
    let mut genesis = GenesisFile::load(&path).unwrap();
    let [moved, host] = [account, of].map(|i| network.accounts[i].address());
    let identities = &mut genesis.organisations[0].identities;
    identities.retain(|identity| !identity.accounts.contains(&moved));
    let identity = identities
        .iter_mut()
        .find(|identity| identity.accounts.contains(&host))
        .unwrap();
    identity.accounts.push(moved);
    std::fs::remove_file(&path).unwrap();
    genesis.write_new(&path).unwrap();
}

/// A member follows the application it deployed: the calls others make to its contract and
/// the contract's events, which name neither its account nor are its transactions, with any
/// key of its identity; a member that deployed nothing there sees neither.
#[test]
fn a_member_sees_the_calls_and_events_of_the_contracts_it_deployed() {
    const OPERATOR: usize = 4;
    const OUTSIDER: usize = 6;
    /// A second key of the operator's identity.
    const OPERATOR_KEY: usize = 7;
    let dir = tempfile::tempdir().unwrap();
    let network = TestNetwork::governed(dir.path(), CHAIN_ID, (1, 0), 8, 1_000);
    for account in [OPERATOR, MEMBER, OUTSIDER] {
        no_auditor_role(&network, account);
    }
    join_identity(&network, OPERATOR_KEY, OPERATOR);
    ask_tokens(&network.configs[0]);
    let node = network.start(0);
    let [operator, member, outsider, operator_key] = [OPERATOR, MEMBER, OUTSIDER, OPERATOR_KEY]
        .map(|account| token(&network, account, CHAIN_ID, "1h"));

    let artifact: Value = serde_json::from_str(include_str!(
        "../../../contracts/artifacts/SealedRecords.json"
    ))
    .unwrap();
    let code = alloy_primitives::hex::decode(artifact["bytecode"].as_str().unwrap()).unwrap();
    let create = alloy_primitives::TxKind::Create;
    let deployed = send_as(&network, &node, &operator, (OPERATOR, 0), create, code);
    let contract: alloy_primitives::Address = deployed["contractAddress"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let install = |token: &str| {
        let filter = json!([{"fromBlock": "latest", "address": contract}]);
        let id = rpc_request_as(node.rpc, Some(token), "eth_newFilter", filter);
        ok(&id).as_str().unwrap().to_owned()
    };
    let filters = [&operator, &outsider].map(|token| (install(token), token));

    // Another member records through the operator's contract.
    let input = recordCall {
        id: alloy_primitives::B256::repeat_byte(7),
        commitment: alloy_primitives::B256::repeat_byte(8),
        envelope: vec![1, 2, 3].into(),
    };
    let call = alloy_primitives::TxKind::Call(contract);
    let receipt = send_as(
        &network,
        &node,
        &member,
        (MEMBER, 0),
        call,
        alloy_sol_types::SolCall::abi_encode(&input),
    );
    let hash = json!([receipt["transactionHash"]]);

    for method in ["eth_getTransactionByHash", "eth_getTransactionReceipt"] {
        for token in [&operator, &operator_key] {
            let seen = rpc_request_as(node.rpc, Some(token), method, hash.clone());
            assert_eq!(ok(&seen)["from"], receipt["from"], "{method}: {seen}");
        }
        let (code, message, _) = refusal(&rpc_request_as(
            node.rpc,
            Some(&outsider),
            method,
            hash.clone(),
        ));
        assert_eq!(code, 4100);
        assert!(
            message.contains("nor a call of a contract they deployed"),
            "{message}"
        );
    }
    let everything = json!([{"fromBlock": "0x0", "toBlock": "latest", "address": contract}]);
    let logs = |token: &str| {
        let answer = rpc_request_as(node.rpc, Some(token), "eth_getLogs", everything.clone());
        ok(&answer).as_array().unwrap().clone()
    };
    for token in [&operator, &operator_key] {
        let operators = logs(token);
        assert_eq!(operators.len(), 1, "{operators:?}");
        assert_eq!(operators[0]["transactionHash"], receipt["transactionHash"]);
    }
    assert!(
        logs(&outsider).is_empty(),
        "an outsider saw the contract's events"
    );
    let polled = filters.map(|(id, token)| {
        let changes = rpc_request_as(node.rpc, Some(token), "eth_getFilterChanges", json!([id]));
        ok(&changes).as_array().unwrap().len()
    });
    assert_eq!(polled, [1, 0], "the operator's filter and the outsider's");

    // State: a member reads its identity's accounts and every contract, not others' accounts.
    let address = |i: usize| network.accounts[i].address().to_string();
    let read = |token: &str, method: &str, params: Value| {
        rpc_request_as(node.rpc, Some(token), method, params)
    };
    ok(&read(
        &operator_key,
        "eth_getBalance",
        json!([address(OPERATOR), "latest"]),
    ));
    ok(&read(
        &outsider,
        "eth_getTransactionCount",
        json!([contract, "latest"]),
    ));
    ok(&read(
        &outsider,
        "trellis_getProof",
        json!([contract, [], "latest"]),
    ));
    for (method, params) in [
        ("eth_getBalance", json!([address(OPERATOR), "latest"])),
        (
            "eth_getTransactionCount",
            json!([address(OPERATOR), "pending"]),
        ),
        ("trellis_getProof", json!([address(OPERATOR), [], "latest"])),
    ] {
        let (code, message, data) = refusal(&read(&outsider, method, params));
        assert_eq!(code, 4100, "{method}: {message}");
        assert!(
            message.contains("is not the caller's to read (it is neither an account of identity"),
            "{method}: {message}"
        );
        assert_eq!(data["permission"], "read:all-state");
    }
    assert!(!node.logged("panicked"), "the node panicked");
}

/// Runs openssl with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A P-256 key `name.key` and a certificate `name.pem` for it, issued by `ca` (its `.pem`
/// and `.key`) with the extensions `extensions`; `ca` `None`: a self-signed authority.
fn certificate(dir: &Path, name: &str, ca: Option<&str>, extensions: &str) {
    let key = format!("{name}.key");
    let pem = format!("{name}.pem");
    let subject = format!("/CN={name}");
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "raw.key",
        ],
    );
    openssl(
        dir,
        &[
            "pkcs8", "-topk8", "-nocrypt", "-in", "raw.key", "-out", &key,
        ],
    );
    std::fs::write(dir.join(format!("{name}.ext")), extensions).unwrap();
    let ext = format!("{name}.ext");
    match ca {
        None => openssl(
            dir,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                &key,
                "-out",
                &pem,
                "-days",
                "2",
                "-subj",
                &subject,
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        ),
        Some(ca) => {
            let csr = format!("{name}.csr");
            openssl(
                dir,
                &["req", "-new", "-key", &key, "-out", &csr, "-subj", &subject],
            );
            let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    &ca_pem,
                    "-CAkey",
                    &ca_key,
                    "-CAcreateserial",
                    "-out",
                    &pem,
                    "-days",
                    "2",
                    "-extfile",
                    &ext,
                ],
            );
        }
    }
}

/// One JSON-RPC call through curl over HTTPS to `addr`, trusting `dir/ca.pem`, presenting
/// the client certificate `client` (its `.pem` and `.key` in `dir`) and `token` if given:
/// the answer, or `None` if the connection failed.
fn over_tls(
    dir: &Path,
    addr: std::net::SocketAddr,
    client: Option<&str>,
    token: Option<&str>,
    method: &str,
    params: Value,
) -> Option<Value> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let mut command = Command::new("curl");
    command
        .current_dir(dir)
        .args(["-sS", "--max-time", "10", "--cacert", "ca.pem"])
        .args([
            "-H",
            "Content-Type: application/json",
            "-d",
            &body.to_string(),
        ]);
    if let Some(client) = client {
        command.args([
            "--cert",
            &format!("{client}.pem"),
            "--key",
            &format!("{client}.key"),
        ]);
    }
    if let Some(token) = token {
        command.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    let out = command.arg(format!("https://{addr}/")).output().unwrap();
    if !out.status.success() {
        return None;
    }
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// The API over TLS for other hosts: a member's client certificate, issued by the members'
/// authority and naming its account, is that account's authentication (no token needed); its
/// standing on chain still decides what it may call. A certificate of another authority, one
/// naming no account, or plain HTTP never get an answer; callers without a certificate still
/// authenticate by token.
#[test]
fn members_call_over_mutual_tls_with_their_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let network = TestNetwork::governed(dir.path(), CHAIN_ID, (1, 0), 6, 1_000);
    no_auditor_role(&network, MEMBER);
    let pki = network.configs[0].parent().unwrap().to_path_buf();
    let member_address = network.accounts[MEMBER].address().to_string();
    let client_ext = |account: &str| {
        format!("subjectAltName=URI:trellis:account:{account}\nextendedKeyUsage=clientAuth\n")
    };
    certificate(&pki, "ca", None, "");
    certificate(
        &pki,
        "api",
        Some("ca"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    );
    certificate(&pki, "member", Some("ca"), &client_ext(&member_address));
    certificate(
        &pki,
        "nameless",
        Some("ca"),
        "extendedKeyUsage=clientAuth\n",
    );
    certificate(&pki, "rogue-ca", None, "");
    certificate(
        &pki,
        "rogue",
        Some("rogue-ca"),
        &client_ext(&member_address),
    );
    let tls = std::net::SocketAddr::from(([127, 0, 0, 1], support::free_ports(1)));
    let mut text = std::fs::read_to_string(&network.configs[0]).unwrap();
    text.push_str(&format!(
        "api_public = \"blocks\"\n\n[api_tls]\naddr = \"{tls}\"\ncert = \"api.pem\"\nkey = \"api.key\"\nclient_ca = \"ca.pem\"\n"
    ));
    std::fs::write(&network.configs[0], text).unwrap();
    let node = network.start(0);
    let started = std::time::Instant::now();
    while over_tls(&pki, tls, None, None, "eth_blockNumber", json!([])).is_none() {
        assert!(started.elapsed() < Duration::from_secs(30), "no TLS server");
        std::thread::sleep(Duration::from_millis(100));
    }

    let balance = json!([member_address, "latest"]);
    // The member's certificate alone: its reads, not the auditors'.
    let answer = over_tls(
        &pki,
        tls,
        Some("member"),
        None,
        "eth_getBalance",
        balance.clone(),
    );
    ok(&answer.unwrap());
    let answer = over_tls(
        &pki,
        tls,
        Some("member"),
        None,
        "trellis_keyActivity",
        json!([member_address]),
    );
    let (code, message, _) = refusal(&answer.unwrap());
    assert_eq!(code, 4100);
    assert!(
        message.contains("does not hold the auditor role"),
        "{message}"
    );
    // Without a certificate: blocks only, or a token.
    let answer = over_tls(&pki, tls, None, None, "eth_getBalance", balance.clone());
    let (_, message, _) = refusal(&answer.unwrap());
    assert!(message.contains("carries no API token"), "{message}");
    let member = token(&network, MEMBER, CHAIN_ID, "1h");
    let answer = over_tls(
        &pki,
        tls,
        None,
        Some(&member),
        "eth_getBalance",
        balance.clone(),
    );
    ok(&answer.unwrap());
    // A token of another account beside the certificate: refused.
    let auditor = token(&network, AUDITOR, CHAIN_ID, "1h");
    let answer = over_tls(
        &pki,
        tls,
        Some("member"),
        Some(&auditor),
        "eth_getBalance",
        balance.clone(),
    );
    let (_, message, _) = refusal(&answer.unwrap());
    assert!(
        message.contains("but the client certificate names"),
        "{message}"
    );
    // No answer for another authority's certificate, one naming no account, or plain HTTP.
    for client in ["rogue", "nameless"] {
        let answer = over_tls(&pki, tls, Some(client), None, "eth_blockNumber", json!([]));
        assert!(answer.is_none(), "{client}: {answer:?}");
    }
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []});
    let plain = support::network::try_post(tls, &body);
    assert!(
        plain.is_none(),
        "plain HTTP answered over the TLS port: {plain:?}"
    );
    // The plain server on loopback is unchanged (anonymous, for the host's own tools).
    ok(&rpc_request_as(node.rpc, None, "eth_getBalance", balance));

    // The CLI over TLS: the member's certificate reads what a member may, not the alarms.
    let cli = |args: &[&str], client: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_trellis"));
        command
            .current_dir(&pki)
            .args(args)
            .args(["--rpc", &format!("https://{tls}"), "--tls-ca", "ca.pem"])
            .env_remove("TRELLIS_API_TOKEN");
        if let Some(client) = client {
            command.args(["--tls-cert", &format!("{client}.pem")]);
            command.args(["--tls-key", &format!("{client}.key")]);
        }
        let out = command.output().unwrap();
        let said = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), said)
    };
    let (passed, said) = cli(&["gov", "list"], Some("member"));
    assert!(passed && said.contains("no proposals yet"), "{said}");
    let (passed, said) = cli(&["alarms"], Some("member"));
    assert!(
        !passed && said.contains("does not hold the auditor role"),
        "{said}"
    );
    let (passed, said) = cli(&["gov", "list"], None);
    assert!(!passed && said.contains("carries no API token"), "{said}");
    assert!(node.logged("a client certificate was refused"));
}
