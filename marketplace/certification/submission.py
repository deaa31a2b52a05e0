"""Submitting a version to certification: the step from catalog's draft to a certify job.

It sits in certification, above catalog: catalog keeps the draft and its row (``lock_draft``,
``mark_submitted``), certification checks the provider's rule choices and the reference baseline and queues
the job, so catalog never imports certification.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction

from marketplace.accounts.models import User
from marketplace.catalog import selectors, upload_sessions
from marketplace.catalog.models import Product, ProductVersion, VersionStatus
from marketplace.catalog.services import (
    CatalogError,
    create_version,
    delete_draft,
    lock_draft,
    mark_submitted,
)
from marketplace.catalog.uploads import HashedFile
from marketplace.certification.plausibility import (
    RuleChoicesRefused,
    check_rule_choices,
    checked_against_reference,
)
from marketplace.certification.services import (
    BaselineRefused,
    check_reference_baseline,
    request_certification,
)
from marketplace.core.errors import JsonableError


@transaction.atomic
def submit_version(
    version: ProductVersion,
    *,
    user: User,
    sdtype_overrides: dict[str, str] | None = None,
    target_column: str | None = None,
    rules: dict | None = None,
) -> ProductVersion:
    """Confirm the draft's metadata (with the provider's corrections) and send it to certification.

    ``rules`` (``{"dismissed": [{"id", "reason"}], "declared": [statement]}``) replaces the provider's
    plausibility choices when given; their shape is checked here, their statements by certification."""
    version = lock_draft(version, user=user, sdtype_overrides=sdtype_overrides, target_column=target_column)
    if rules is not None:
        try:
            version.rules = {**version.rules, **check_rule_choices(rules)}
        except RuleChoicesRefused as error:
            raise CatalogError("bad_rules", str(error)) from None
    try:
        # Before any job exists: a holdout that overlaps train, or too small a one, makes every privacy
        # figure meaningless.
        check_reference_baseline(version)
    except BaselineRefused as error:
        raise CatalogError(error.code, str(error), extra={"baseline": error.figures}) from None
    mark_submitted(version)
    request_certification(version)
    return version


def checked_rule_choices(version: ProductVersion, rules: dict[str, Any] | None) -> dict[str, list] | None:
    """The provider's plausibility choices checked against the version's reference rows (None: keep the
    stored ones). Raises ``RuleChoicesRefused`` (``bad_rules``, 400)."""
    if rules is None:
        return None
    choices = check_rule_choices(rules)
    checked_against_reference(version, choices)
    return choices


def create_and_submit_version(
    product: Product,
    *,
    user: User,
    synthetic: Sequence[HashedFile],
    train: HashedFile | None = None,
    holdout: HashedFile | None = None,
    target_column: str = "",
    changelog: str = "",
    sessions: Sequence[Any] = (),
    submit: bool = True,
    sdtype_overrides: dict[str, str] | None = None,
    rules: dict[str, Any] | None = None,
) -> ProductVersion:
    """Create a version from the uploads (catalog's ``create_version``), attach the completed upload
    ``sessions`` they came from, and unless ``submit`` is false send it to certification (``submit_version``)
    with the provider's corrections and rule choices. All-or-nothing: on a refusal (a ``JsonableError``) the
    draft is discarded and the error raised as it is; a version without its reference rows is refused
    (``reference_required``) rather than failing in certification later."""
    version: ProductVersion | None = None
    try:
        version = create_version(
            product,
            user=user,
            synthetic=synthetic,
            train=train,
            holdout=holdout,
            target_column=target_column,
            changelog=changelog,
        )
        upload_sessions.mark_attached(list(sessions))
        if submit and (missing := selectors.missing_reference(version)):
            raise CatalogError("reference_required", missing)
        if submit:
            version = submit_version(
                version,
                user=user,
                sdtype_overrides=sdtype_overrides,
                rules=checked_rule_choices(version, rules),
            )
    except JsonableError:
        if version is not None and version.status == VersionStatus.DRAFT:
            delete_draft(version, user=user)
        raise
    return version
