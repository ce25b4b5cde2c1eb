"""OKTA.md's flows, the fixtures of test_okta.py, for every test under tests/core: the
checklist (test_coverage.py) and the judgement (test_okta_expect.py) replay the same flows by
name (``request.getfixturevalue``), so the fixtures are made available here once instead of
being imported into each of those modules."""

from __future__ import annotations

from tests.core.test_okta import (  # noqa: F401
    aiw_deactivate_flow,
    aiw_group_push_flow,
    aiw_password_sync_flow,
    aiw_reactivate_flow,
    create_user_flow,
    crud_test_flow,
    deactivate_flow,
    discovery_flow,
    group_delete_flow,
    group_push_flow,
    import_groups_flow,
    import_users_flow,
    link_existing_user_flow,
    not_okta_flow,
    password_sync_patch_flow,
    push_empty_values_flow,
    push_now_empty_flow,
    push_now_flow,
    rate_limited_create_flow,
    rate_limited_give_up_flow,
    reactivate_flow,
    spec_test_flow,
    test_credentials_flow,
    update_profile_flow,
)
