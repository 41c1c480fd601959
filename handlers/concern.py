"""`/concern`: open the modal at once, answer the pupil typeahead, file the submission."""

from __future__ import annotations

import contextlib
from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck, AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from handlers import concern_modal
from handlers.context import deps_of, staff_of, workspace_of
from handlers.payload import slack_error
from store import pupils
from store.access import is_keyholder
from store.db import DATABASE_ERRORS, transaction
from store.flows import concerns, signin
from store.incidents import ConcernDraft, FiledConcern, InvalidConcern
from store.staff import active_roles, search_staff

log = structlog.get_logger(__name__)

HELP = (
    "*{command}* opens a form to record a concern about a pupil. What you write goes to a "
    "secure record, never into Slack: the people alerted see only your name and the "
    "categories.\n"
    "• `{command}` record a concern\n"
    "• `{command} login` a one-time link to the secure web view\n"
    "• `{command} help` this message\n"
    "If a child is in immediate danger, tell a Designated Safeguarding Lead in person now."
)
FORM_UNAVAILABLE = (
    ":warning: Vigil can't reach its database just now, so the pupil search finds nothing "
    "yet. You can start writing; try the search again in a minute. If a child is at risk, "
    "tell a DSL in person now."
)
SAVE_FAILED = (
    "Vigil could not save this just now. Nothing in this form is lost: press Submit again "
    "in a minute. If a child is at risk, tell a DSL in person now."
)


async def concern_command(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    """`/concern` (and `help`, `login`): the modal opens before any database work."""
    deps = deps_of(context)
    subcommand = body.get("text", "").strip().lower()
    if subcommand == "help":
        await ack(HELP.format(command=deps.command))
        return
    if subcommand == "login":
        await ack(await _login_link(context))
        return
    await ack()
    # Open before any slow work: the trigger_id expires about 3 s after the command.
    try:
        opened = await client.views_open(
            trigger_id=str(body.get("trigger_id") or ""),
            view=concern_modal.concern_view(
                catalogue=deps.school_of(workspace_of(context)).catalogue, keyholder=False
            ),
        )
    except SlackApiError as error:  # an expired or odd trigger id: Slack's code, no more
        log.warning("concern.modal_open_failed", error=slack_error(error))
        return
    deps.spawn(_tailor_view(client, opened["view"], context))


async def pupil_typeahead(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
    """Both pupil pickers' options: pupils matching what was typed (staff only)."""
    async with deps_of(context).factory() as session:
        found = await pupils.search(
            session,
            workspace_id=workspace_of(context),
            requester_slack_id=context.user_id or "",
            query=str(body.get("value") or ""),
        )
    await ack(options=[concern_modal.pupil_option(p) for p in found])


async def adult_typeahead(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
    """The adult picker's options: staff matching what was typed, and the typed name."""
    typed = str(body.get("value") or "")
    async with deps_of(context).factory() as session:
        found = await search_staff(
            session,
            workspace_id=workspace_of(context),
            requester_slack_id=context.user_id or "",
            query=typed,
        )
    await ack(options=concern_modal.adult_options(found, typed) if found is not None else [])


async def concern_submitted(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
) -> None:
    """The modal's Submit: file the concern, or say what is wrong under each field."""
    draft = concern_modal.parse_submission(view)
    try:
        outcome = await _file(context, draft, view_id=view["id"])
    except InvalidConcern as invalid:
        log.info("concern.invalid", fields=sorted(invalid.errors))
        await ack(response_action="errors", errors=_field_errors(invalid.errors, view))
        return
    except DATABASE_ERRORS:
        log.exception("concern.save_failed")
        await ack(response_action="errors", errors={"narrative": SAVE_FAILED})
        return
    await ack()
    if outcome is not None:
        deps_of(context).notify_outbox()
        log.info("concern.filed", incident=outcome.number, alerted=outcome.alerted)


async def _login_link(context: AsyncBoltContext) -> str:
    """A one-time sign-in link for the person asking (shown only to them)."""
    deps = deps_of(context)
    async with transaction(deps.factory) as session:
        staff = await staff_of(context, session)
        if staff is None:
            return concerns.NOT_STAFF
        token = await signin.issue_login_link(session, staff=staff, now=deps.clock())
    log.info("web.login_link_issued", staff=staff.id)
    return (
        f"Your one-time link to Vigil (valid for 5 minutes, only for you): "
        f"{deps.public_url}/login/{token}\nYou will also need your authenticator code."
    )


async def _tailor_view(
    client: AsyncWebClient, view: dict[str, Any], context: AsyncBoltContext
) -> None:
    """Swap in the right form once we know who is asking (the modal is already open)."""
    deps = deps_of(context)
    try:
        async with deps.factory() as session:
            roles = await active_roles(
                session, workspace_id=workspace_of(context), slack_user_id=context.user_id or ""
            )
        if roles is None:
            replacement = concern_modal.not_staff_view()
        elif is_keyholder(roles):
            replacement = concern_modal.concern_view(
                catalogue=deps.school_of(workspace_of(context)).catalogue, keyholder=True
            )
        else:
            return
        await client.views_update(view_id=view["id"], hash=view.get("hash"), view=replacement)
    except SlackApiError as error:
        log.warning("concern.view_update_failed", error=slack_error(error))
    except DATABASE_ERRORS as error:
        log.warning("concern.staff_lookup_failed", error=type(error).__name__)
        # The form is open and stays usable: say why the pupil search finds nothing yet.
        with contextlib.suppress(SlackApiError):
            await client.views_update(
                view_id=view["id"],
                hash=view.get("hash"),
                view=concern_modal.concern_view(
                    catalogue=deps.school_of(workspace_of(context)).catalogue,
                    keyholder=False,
                    notice=FORM_UNAVAILABLE,
                ),
            )


async def _file(
    context: AsyncBoltContext, draft: ConcernDraft, *, view_id: str
) -> FiledConcern | None:
    """File the draft; None when this modal was already filed (a repeated submission)."""
    deps = deps_of(context)
    async with transaction(deps.factory) as session:
        return await concerns.file_from_slack(
            session,
            workspace_id=workspace_of(context),
            author=await staff_of(context, session),
            draft=draft,
            setup=deps.setup_for(workspace_of(context)),
            alert_channel=deps.alert_channel,
            slack_view_id=view_id,
            now=deps.clock(),
        )


def _field_errors(errors: dict[str, str], view: dict[str, Any]) -> dict[str, str]:
    """Errors only under input blocks that exist in this view (Slack refuses others)."""
    present = {b.get("block_id") for b in view.get("blocks", []) if b.get("type") == "input"}
    placed = {field: message for field, message in errors.items() if field in present}
    stray = [message for field, message in errors.items() if field not in present]
    if stray:
        placed["narrative"] = " ".join([placed.get("narrative", ""), *stray]).strip()
    return placed
