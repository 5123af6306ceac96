"""The desk's watchlist editor: the watchlists and their items, a watch item's form with a
preview over the stored archive, and a save.

Routes only, as ``newswatch watchlists edit`` is: the edit, its validation and the save
(a compare-and-swap on the file's version) are ``crawler.config.edit``'s, the preview
``crawler.app.preview``'s. The preview reads through the desk's own store thread, the
file work runs in the threadpool: the event loop never waits on either.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from crawler.app import preview
from crawler.app.configure import CHECKS
from crawler.app.desk.host import Host
from crawler.app.desk.kit import Kit
from crawler.config import WATCHLISTS_FILE, Config, edit
from crawler.process.script import direction, script

log = logging.getLogger(__name__)
#: the periods a preview replays, by the ``days`` field; DEFAULT_DAYS is the default
DAYS = ("7", "30", "90")
DEFAULT_DAYS = "30"


def item_url(watchlist: str, item: str) -> str:
    """The edit page of a watch item."""
    return f"/watchlists/{quote(watchlist, safe='')}/{quote(item, safe='')}"


def read_only(config: Config) -> str | None:
    """Why the desk cannot write watchlists.yaml (the probe ``edit.save`` uses), or None."""
    return edit.unwritable((Path(config.directory) / WATCHLISTS_FILE).resolve())


def _lines(form: FormData, key: str) -> tuple[str, ...]:
    """A textarea's entries, one a line, blank lines left out."""
    return tuple(s for line in str(form.get(key, "")).splitlines() if (s := line.strip()))


def _from_form(current: edit.ItemValue, form: FormData) -> edit.ItemValue:
    """The item as the form says: the rules stay as they are where they are not
    editable (their fields are not in the form)."""
    rules: dict[str, Any] = {kind: _lines(form, kind) for kind in edit.RULE_KEYS
                             if getattr(current, kind) is not None}
    return dataclasses.replace(current, name=str(form.get("name", "")).strip(),
                               aliases=_lines(form, "aliases"), **rules)


def routes(host: Host, kit: Kit) -> list[BaseRoute]:

    @kit.page
    async def listing(request: Request) -> Response:
        config = host.config()
        why = await run_in_threadpool(read_only, config)
        return kit.render(request, "watchlists.html", watchlists=config.watchlists,
                          read_only=why, item_url=item_url)

    async def current(watchlist: str, item: str) -> tuple[edit.Loaded, edit.ItemValue]:
        config = host.config()
        loaded = await run_in_threadpool(edit.load, config.directory)
        value = await run_in_threadpool(edit.item_value, loaded.text, watchlist, item,
                                        str(loaded.path))
        return loaded, value

    async def form_page(request: Request, value: edit.ItemValue, version: str,
                        status: int = 200, **context: Any) -> Response:
        watchlist, item = request.path_params["watchlist"], request.path_params["item"]
        context = {"saved": "", "error": "", "problems": [], "yaml": "", "yaml_path": "",
                   "changed": False, "result": None, "preview_error": "", **context}
        return kit.render(request, "watch_item.html", status, watchlist=watchlist,
                          item=item, value=value, version=version, url=item_url(
                              watchlist, item), days=DAYS,
                          chosen=context.pop("chosen", DEFAULT_DAYS), **context)

    @kit.page
    async def item_page(request: Request) -> Response:
        watchlist, item = request.path_params["watchlist"], request.path_params["item"]
        try:
            loaded, value = await current(watchlist, item)
        except edit.EditError:
            return PlainTextResponse("not found: no such watch item in watchlists.yaml\n",
                                     404)
        saved = request.query_params.get("saved", "")
        confirmation = ""
        if saved and loaded.version.startswith(saved) and len(saved) >= 8:
            warnings = request.query_params.get("warnings", "0")
            confirmation = (
                f"Saved {value.name} in {loaded.path} (version {saved}). It passes "
                f"`newswatch check` (config OK, {warnings if warnings.isdigit() else 0} "
                "warning(s)); the daemon picks it up at its next reload.")
        return await form_page(request, value, loaded.version, saved=confirmation)

    async def edited(request: Request) -> tuple[FormData, edit.ItemValue, str] | Response:
        """The form's item and version, over the item as the file has it now."""
        form = await request.form()
        watchlist, item = request.path_params["watchlist"], request.path_params["item"]
        try:
            _, value = await current(watchlist, item)
        except edit.EditError:
            return PlainTextResponse("not found: no such watch item in watchlists.yaml "
                                     "(renamed or removed since?)\n", 404)
        return form, _from_form(value, form), str(form.get("version", ""))

    async def first_batch(request: Request, new: edit.ItemValue,
                          days: str) -> tuple[dict[str, Any] | None, str]:
        """The preview's first page of results (the newest articles), or why none."""
        watchlist, item = request.path_params["watchlist"], request.path_params["item"]
        config = host.config()
        try:
            after = await run_in_threadpool(edit.applied, config, new, item)
        except edit.EditError as exc:
            return None, str(exc)
        store = host.store
        since = host.clock.now() - timedelta(days=int(days))
        rules = await store.call(store.sync.rules)
        running = preview.ItemPreview(store.sync, config, after, watchlist, item, new.name,
                                      since, rules)
        pages = iter(running)
        try:  # the page is read and matched on the store's thread, as every desk read
            batch = await store.call(next, pages, None)
        except preview.PreviewError as exc:
            return None, str(exc)
        if batch is None:
            return None, "the archive could not be read"
        rows = [{"headline": r.article.title or r.article.url,
                 "dir": direction(script(r.article.title or r.article.url)),
                 "url": r.article.url if r.article.url.startswith(("https://", "http://"))
                 else "", "outlet": r.article.source,
                 "when": kit.when(r.fetched_at), "status": r.status, "why": r.why}
                for r in batch.rows]
        return {"rows": rows, "counts": batch.counts, "scanned": batch.scanned,
                "total": batch.total, "done": batch.done, "days": days,
                "reached": kit.when(batch.reached)}, ""

    @kit.action
    async def preview_item(request: Request) -> Response:
        found = await edited(request)
        if isinstance(found, Response):
            return found
        form, new, version = found
        days = str(form.get("days", DEFAULT_DAYS))
        days = days if days in DAYS else DEFAULT_DAYS
        result, error = await first_batch(request, new, days)
        if request.headers.get("hx-request"):
            return kit.render(request, "_preview.html", result=result, preview_error=error)
        return await form_page(request, new, version, result=result, preview_error=error,
                               chosen=days)

    @kit.action
    async def save(request: Request) -> Response:
        found = await edited(request)
        if isinstance(found, Response):
            return found
        form, new, version = found
        item = request.path_params["item"]
        days = str(form.get("days", DEFAULT_DAYS))
        kept = {"chosen": days if days in DAYS else DEFAULT_DAYS}
        user = kit.user(request)
        config = host.config()
        try:
            saved = await run_in_threadpool(
                lambda: edit.save(config.directory, new, version, item, checks=CHECKS,
                                  probe=edit.unwritable))
        except edit.ChangedSince:
            return await form_page(request, new, version, 409, changed=True, error=(
                "Not saved: the file changed since you opened this form."), **kept)
        except edit.InvalidEdit as exc:
            return await form_page(request, new, version, 422, problems=[
                str(p) for p in exc.problems], error="Not saved: the edited config does "
                "not pass `newswatch check`.", **kept)
        except edit.ReadOnly as exc:
            log.info("desk: %s edited %s / %s, not saved: %s is read-only here (%s)",
                     user, new.watchlist, item, exc.path, exc.reason)
            return await form_page(request, new, version, 409, yaml=exc.text,
                                   yaml_path=str(exc.path), error=(
                                       f"Not saved: the config is read-only here "
                                       f"({exc.reason}). Copy the YAML below into "
                                       f"{exc.path} where it can be written."), **kept)
        except edit.EditError as exc:
            return await form_page(request, new, version, 422, error=f"Not saved: {exc}",
                                   **kept)
        log.info("desk: %s saved watch item %s / %s%s in %s (version %s)", user,
                 new.watchlist, item, f" as {new.name}" if new.name != item else "",
                 saved.path, saved.version[:16])
        return RedirectResponse(f"{item_url(new.watchlist, new.name)}?saved="
                                f"{saved.version[:16]}&warnings="
                                f"{len(saved.config.warnings)}", 303)

    return [Route("/watchlists", listing, methods=["GET"]),
            Route("/watchlists/{watchlist}/{item:path}/preview", preview_item,
                  methods=["POST"]),
            Route("/watchlists/{watchlist}/{item:path}", item_page, methods=["GET"]),
            Route("/watchlists/{watchlist}/{item:path}", save, methods=["POST"])]
