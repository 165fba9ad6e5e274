//! The registry written into a state's change set and read back from the committed state.

use trellis_governance::{
    AccountStatus, IdentityId, OrgId, Refusal, Registry, RegistryError, RegistryWriter, Role,
    Window, governed, refusal,
};
use trellis_state::{ChangeSet, MemoryStore, StateReader};
use trellis_types::{Address, Height};

fn commit(state: &mut MemoryStore, changes: &ChangeSet) {
    let height = state.committed().map_or(Height(0), |(h, _)| h.next());
    state.commit(height, changes).unwrap();
}

const BANK: OrgId = OrgId(1);
const TELLER: IdentityId = IdentityId(10);
const AUDITOR: IdentityId = IdentityId(11);

fn alice() -> Address {
    Address::repeat_byte(0xa1)
}

fn founders(state: &MemoryStore) -> ChangeSet {
    let mut writer = RegistryWriter::new(state);
    writer
        .add_organisation(BANK, "First Consortium Bank")
        .unwrap();
    writer.add_identity(TELLER, BANK, Window::ALWAYS).unwrap();
    writer
        .add_identity(
            AUDITOR,
            BANK,
            Window {
                from: Height(0),
                until: Some(Height(100)),
            },
        )
        .unwrap();
    writer.add_account(alice(), TELLER, Window::ALWAYS).unwrap();
    writer
        .add_account(Address::repeat_byte(0xb2), AUDITOR, Window::ALWAYS)
        .unwrap();
    writer.grant(TELLER, Role::transactor()).unwrap();
    writer.grant(AUDITOR, Role::auditor()).unwrap();
    let mut changes = ChangeSet::new();
    writer.finish(&mut changes).unwrap();
    changes
}

#[test]
fn founding_members_read_back_with_their_roles_and_windows() {
    let mut state = MemoryStore::new();
    let changes = founders(&state);
    commit(&mut state, &changes);
    let registry = Registry::new(&state);

    assert_eq!(
        registry.organisation(BANK).unwrap().as_deref(),
        Some("First Consortium Bank")
    );
    assert_eq!(registry.organisation(OrgId(2)).unwrap(), None);
    let account = registry.account(&alice()).unwrap().unwrap();
    assert_eq!(
        (account.identity, account.status),
        (TELLER, AccountStatus::Normal)
    );
    assert!(
        registry
            .may(&alice(), &Role::transactor(), Height(5))
            .unwrap()
    );
    assert!(
        !registry
            .may(&alice(), &Role::deployer(), Height(5))
            .unwrap()
    );
    assert!(
        !registry
            .may(&Address::repeat_byte(0xcc), &Role::transactor(), Height(5))
            .unwrap(),
        "an unregistered account holds nothing"
    );
    // The auditor's identity is valid until block 100 only.
    let auditor = Address::repeat_byte(0xb2);
    assert!(
        registry
            .may(&auditor, &Role::auditor(), Height(99))
            .unwrap()
    );
    assert!(
        !registry
            .may(&auditor, &Role::auditor(), Height(100))
            .unwrap()
    );
    assert!(
        state
            .account(&trellis_governance::REGISTRY_ADDRESS)
            .unwrap()
            .is_some()
    );
}

#[test]
fn a_frozen_account_may_nothing_until_unfrozen_and_an_abolished_one_stays_so() {
    let mut state = MemoryStore::new();
    let changes = founders(&state);
    commit(&mut state, &changes);

    let mut writer = RegistryWriter::new(&state);
    writer
        .set_status(alice(), AccountStatus::Frozen, Height(1), 7)
        .unwrap();
    let mut changes = ChangeSet::new();
    writer.finish(&mut changes).unwrap();
    commit(&mut state, &changes);
    let record = Registry::new(&state).account(&alice()).unwrap().unwrap();
    assert_eq!(
        (record.status, record.status_since, record.status_by),
        (AccountStatus::Frozen, Height(1), 7)
    );
    assert!(
        !Registry::new(&state)
            .may(&alice(), &Role::transactor(), Height(2))
            .unwrap()
    );

    let mut writer = RegistryWriter::new(&state);
    writer
        .set_status(alice(), AccountStatus::Normal, Height(2), 8)
        .unwrap();
    writer
        .set_status(alice(), AccountStatus::Abolished, Height(2), 9)
        .unwrap();
    assert!(matches!(
        writer.set_status(alice(), AccountStatus::Normal, Height(2), 10),
        Err(RegistryError::Abolished(_))
    ));
}

#[test]
fn bad_changes_are_refused_with_their_reason() {
    let mut state = MemoryStore::new();
    let changes = founders(&state);
    commit(&mut state, &changes);
    let mut writer = RegistryWriter::new(&state);
    assert!(matches!(
        writer.add_organisation(BANK, "again"),
        Err(RegistryError::OrganisationExists(BANK))
    ));
    assert!(matches!(
        writer.add_organisation(OrgId(2), &"x".repeat(31)),
        Err(RegistryError::NameTooLong(_))
    ));
    assert!(matches!(
        writer.add_identity(IdentityId(12), OrgId(9), Window::ALWAYS),
        Err(RegistryError::NoOrganisation(OrgId(9)))
    ));
    assert!(matches!(
        writer.add_account(alice(), AUDITOR, Window::ALWAYS),
        Err(RegistryError::AccountTaken { holder: TELLER, .. })
    ));
    let empty = Window {
        from: Height(5),
        until: Some(Height(5)),
    };
    assert!(matches!(
        writer.add_identity(IdentityId(12), BANK, empty),
        Err(RegistryError::EmptyWindow(_))
    ));
    assert!(matches!(
        writer.set_status(
            Address::repeat_byte(0xcc),
            AccountStatus::Frozen,
            Height(1),
            1
        ),
        Err(RegistryError::NoAccount(_))
    ));
    assert!(matches!(
        writer.grant(IdentityId(99), Role::governor()),
        Err(RegistryError::NoIdentity(IdentityId(99)))
    ));
}

#[test]
fn the_transaction_check_names_what_is_missing() {
    let mut state = MemoryStore::new();
    assert!(!governed(&state).unwrap(), "no founders, no registry");
    let changes = founders(&state);
    commit(&mut state, &changes);
    assert!(governed(&state).unwrap());

    let at = Height(5);
    assert_eq!(refusal(&state, &alice(), false, at).unwrap(), None);
    let creating = refusal(&state, &alice(), true, at).unwrap().unwrap();
    assert_eq!(
        creating.to_string(),
        format!(
            "account {} (identity #10) does not hold the deployer role",
            alice()
        )
    );
    let stranger = Address::repeat_byte(0xcc);
    assert_eq!(
        refusal(&state, &stranger, false, at).unwrap(),
        Some(Refusal::Unregistered(stranger))
    );
    // The auditor holds no transactor role, and its identity ends at block 100.
    let auditor = Address::repeat_byte(0xb2);
    assert!(matches!(
        refusal(&state, &auditor, false, at).unwrap(),
        Some(Refusal::MissingRole { .. })
    ));
    assert!(matches!(
        refusal(&state, &auditor, false, Height(100)).unwrap(),
        Some(Refusal::IdentityNotValid { .. })
    ));

    let mut writer = RegistryWriter::new(&state);
    writer
        .set_status(alice(), AccountStatus::Frozen, Height(812), 7)
        .unwrap();
    let mut changes = ChangeSet::new();
    writer.finish(&mut changes).unwrap();
    commit(&mut state, &changes);
    assert_eq!(
        refusal(&state, &alice(), false, Height(900))
            .unwrap()
            .unwrap()
            .to_string(),
        format!(
            "account {} is frozen since block 812 by proposal 7",
            alice()
        )
    );
}
