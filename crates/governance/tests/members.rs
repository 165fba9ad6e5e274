//! Members leave and change by vote too: ending an identity's or an account's validity window
//! stops it from that block on, while its records stay for the history.

mod common;

use common::{Chain, account, pass};
use trellis_governance::{IdentityId, Refusal, Registry, Window, contracts::Action, refusal};
use trellis_types::Height;

#[test]
fn a_member_whose_window_is_ended_is_refused_from_then_on() {
    let mut chain = Chain::new(3);
    chain.skip(5);
    let teller = account(4);
    assert_eq!(
        refusal(&chain.state, &teller, false, chain.height()).unwrap(),
        None
    );
    let ends = Height(chain.height().get() + 5);
    let window = Window {
        from: Height(0),
        until: Some(ends),
    };
    let leave = Action::SetIdentityWindow {
        identity: IdentityId(4),
        window,
    };
    assert_eq!(pass(&mut chain, &leave), None);
    assert_eq!(
        refusal(&chain.state, &teller, false, Height(ends.get() - 1)).unwrap(),
        None
    );
    assert!(matches!(
        refusal(&chain.state, &teller, false, ends).unwrap(),
        Some(Refusal::IdentityNotValid { .. })
    ));
    let record = Registry::new(&chain.state).identity(IdentityId(4)).unwrap();
    assert_eq!(record.map(|r| r.window), Some(window), "the record stays");

    // An account alone, too; and nothing that does not exist.
    let account_window = Window {
        from: Height(0),
        until: Some(Height(1)),
    };
    let close = Action::SetAccountWindow {
        account: account(3),
        window: account_window,
    };
    assert_eq!(pass(&mut chain, &close), None);
    assert!(matches!(
        refusal(&chain.state, &account(3), false, chain.height()).unwrap(),
        Some(Refusal::AccountNotValid { .. })
    ));
    let unknown = Action::SetAccountWindow {
        account: account(9),
        window: account_window,
    };
    let reason = pass(&mut chain, &unknown).unwrap();
    assert!(reason.contains("is not registered"), "{reason}");
}
