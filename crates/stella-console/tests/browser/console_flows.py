#!/usr/bin/env python3
"""The Stella web console in headless Chromium (Debian's /usr/bin/chromium,
driven by PyPI playwright; no downloaded browser).

Started by crates/stella-cli/tests/console_browser.rs with a running
`stella serve` and a docker-registry holding a signed image. Environment:
STELLA_URL, STELLA_DATA_DIR, STELLA_ADMIN_SECRET, STELLA_ACME_SECRET (a
client of another tenant), STELLA_IMAGE, STELLA_AXE_JS, STELLA_SHOTS.

Flows: sign in (by keyboard), upload an artifact, see its staged metadata,
the 409 "in use" explained, delete, an error with title and detail; the
OCI OpenVEX provider's configuration (keys staged and chosen, images
pasted, an invalid reference flagged inline, saved), run status (run now,
per-image result, reload while running), VEX search (statements and the
conflicting consensus, one issuer's statements); exports (a field error,
one followed live to succeeded, downloaded and verified, a failing one's
reason, delete, another tenant's export never shown); image check with the
report, sign out and be refused. Run again with `restart` after the server
restarted on the same data directory: still signed in, the stored session
holds no secret in the clear, cookies are Secure through a trusted TLS
proxy, image checks outside the registry allow-list are refused, sign-out
deletes the session. Security: a hostile file
name renders as text, a POST without the CSRF token (or from another
origin) is refused, another tenant's artifacts never appear. Every page:
axe-core with no serious or critical violation, no horizontal overflow at
375 px, no layout shift, screenshots at 1280 px and 375 px.
"""

import hashlib
import json
import os
import sqlite3
import sys
from urllib.parse import urlencode

import requests
from playwright.sync_api import sync_playwright

URL = os.environ["STELLA_URL"].rstrip("/")
DATA = os.environ["STELLA_DATA_DIR"]
ADMIN_SECRET = os.environ["STELLA_ADMIN_SECRET"]
ACME_SECRET = os.environ["STELLA_ACME_SECRET"]
IMAGE = os.environ["STELLA_IMAGE"]
VEX_IMAGE = os.environ["STELLA_VEX_IMAGE"]
WORK = os.environ["STELLA_WORK"]
AXE = open(os.environ["STELLA_AXE_JS"], encoding="utf-8").read()
SHOTS = os.environ["STELLA_SHOTS"]
# The browser's cookies, kept between the run and the restart phase.
STATE = os.environ["STELLA_BROWSER_STATE"]
PROVIDER = "excititor:oci-openvex"
# No quotes: Chromium percent-encodes `"` in multipart file names.
HOSTILE_NAME = "<img src=x onerror=window.__pwned=1>.pem"
# Claimed by an attestation on the registry (console_browser.rs pushes it).
HOSTILE_PREDICATE = "https://evil.test/<script>window.__pwned=3</script>"
# Must match console_browser.rs.
VEX_PRODUCT = "pkg:generic/console-demo@1.0"
VEX_CVE = "CVE-2024-4242"
HOSTILE_IMPACT = "<img src=x onerror=window.__pwned=4> never loaded"

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

passed = 0
failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {what}")
    else:
        failed += 1
        print(f"FAIL {what}")


def api_token(client, secret):
    r = requests.post(
        f"{URL}/connect/token",
        data={"grant_type": "client_credentials", "client_id": client, "client_secret": secret},
        timeout=10,
    )
    r.raise_for_status()
    return r.json()["access_token"]


def audit(page, name):
    """axe-core, overflow and layout shift on the current page; screenshots."""
    page.evaluate(AXE)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [v for v in result["violations"] if v.get("impact") in ("serious", "critical")]
    for v in bad:
        print(f"     axe {v['id']} ({v['impact']}): {v['help']} -> {[n['target'] for n in v['nodes']][:3]}")
    check(not bad, f"{name}: no serious/critical axe violations")
    shift = page.evaluate(
        """() => new Promise(resolve => {
            let total = 0;
            new PerformanceObserver(list => {
                for (const e of list.getEntries()) if (!e.hadRecentInput) total += e.value;
            }).observe({type: 'layout-shift', buffered: true});
            setTimeout(() => resolve(total), 300);
        })"""
    )
    check(shift < 0.01, f"{name}: no layout shift (CLS {shift:.4f})")
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 900})
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        check(overflow <= 0, f"{name}: no horizontal page overflow at {width} px ({overflow})")
        page.screenshot(path=os.path.join(SHOTS, f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 320, "height": 900})
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    check(overflow <= 0, f"{name}: no horizontal page overflow at 320 px ({overflow})")
    page.set_viewport_size({"width": 1280, "height": 900})


def problem_shown(page, title, detail_part):
    box = page.locator(".problem")
    if box.count() == 0:
        return False
    return title in box.locator("h2").inner_text() and detail_part in box.locator(".detail").inner_text()


def stage(page, name, path):
    """Stages a file through the console's artifact page; its artifact id."""
    page.goto(f"{URL}/console/providers/{PROVIDER}")
    with open(path, "rb") as f:
        payload = f.read()
    page.set_input_files("#artifact-file", files=[{"name": name, "mimeType": "application/x-pem-file", "buffer": payload}])
    page.click("button:has-text('Stage artifact')")
    page.wait_for_selector(".notice")
    return page.locator(".notice dd").first.inner_text().strip()


def slot_fieldset(page, slot):
    return page.locator(f"fieldset.slot:has(legend:has-text('{slot}'))")


def provider_config_flow(page):
    """Configure the OCI OpenVEX provider: upload into slots (staged
    metadata, clear), edit the image list line by line (add, remove, paste
    many; an invalid line flagged inline with the server's code), save."""
    ci_key = stage(page, "ci.pub", os.path.join(WORK, "ci.pub"))

    page.goto(f"{URL}/console/providers")
    page.click(f"a[aria-label='Configuration of {PROVIDER}']")
    page.wait_for_url(f"**/console/providers/{PROVIDER}/config")
    for slot in ("cosignKeys", "tufRoot", "offlineBundle", "registryAuth"):
        present = (
            slot_fieldset(page, slot).count() == 1
            and page.locator(f"#f-{slot}-file").count() == 1
            and page.locator(f"button:has-text('Upload to {slot}')").count() == 1
            and page.locator(f"button:has-text('Clear {slot}')").count() == 1
        )
        check(present, f"config: artifact slot {slot} with its own upload and clear")
    check("is not ready" in page.locator("section.panel").first.inner_text(), "config: unconfigured provider not ready")

    # Upload straight into the cosignKeys slot: staged, set, metadata shown.
    with open(os.path.join(WORK, "other.pub"), "rb") as f:
        other_pub = f.read()
    page.set_input_files("#f-cosignKeys-file", files=[{"name": "other.pub", "mimeType": "application/x-pem-file", "buffer": other_pub}])
    page.click("button:has-text('Upload to cosignKeys')")
    page.wait_for_selector(".notice")
    check(f"/console/providers/{PROVIDER}/config?slot=cosignKeys&artifact=" in page.url,
          f"config: slot upload returns to the configuration ({page.url})")
    notice = page.locator(".notice").inner_text()
    check("chosen for cosignKeys" in notice, f"config: slot upload chooses it in the slot ({notice!r})")
    other_key = page.locator(".notice dd").first.inner_text().strip()
    check(page.locator(f"input[name=cosignKeys][value='{other_key}']").is_checked(), "config: uploaded key ticked in its slot")
    keys_text = slot_fieldset(page, "cosignKeys").inner_text()
    check(hashlib.sha256(other_pub).hexdigest() in keys_text and "admin" in keys_text,
          "config: the slot shows the staged sha256 and who staged it")

    # A TUF root into its slot, then cleared (the artifact stays staged).
    root = b'{"signed": {"_type": "root"}, "signatures": []}'
    page.set_input_files("#f-tufRoot-file", files=[{"name": "root.json", "mimeType": "application/json", "buffer": root}])
    page.click("button:has-text('Upload to tufRoot')")
    page.wait_for_selector(".notice")
    root_id = page.locator(".notice dd").first.inner_text().strip()
    check(page.locator("#f-tufRoot").input_value() == root_id, "config: TUF root chosen in its slot")
    root_text = slot_fieldset(page, "tufRoot").inner_text()
    check(hashlib.sha256(root).hexdigest() in root_text and f"{len(root)} B" in root_text,
          "config: TUF root slot shows sha256 and size")
    page.click("button:has-text('Clear tufRoot')")
    page.wait_for_selector(".notice")
    check("Cleared tufRoot" in page.locator(".notice").inner_text(), "config: slot cleared (not saved)")
    check(page.locator("#f-tufRoot").input_value() == "", "config: cleared slot is empty")
    check(page.locator(f"#f-tufRoot option[value='{root_id}']").count() == 1, "config: cleared artifact still staged")
    audit(page, "provider-config")

    # The list editor: type a bad line, add a line (in place), paste many.
    page.fill("#f-imageSubscriptions-0", "Not A Valid/Ref!!")
    page.click("button:has-text('Add a line')")
    check(page.evaluate("document.activeElement.id") == "f-imageSubscriptions-1", "config: add a line focuses the new line")
    page.keyboard.type("registry.invalid/unwanted:1")
    page.fill("#f-imageSubscriptions-paste", f"{VEX_IMAGE}\n")
    page.select_option("#f-cosignMode", "keypair")
    page.select_option("#f-allowHttpRegistries", "true")
    page.select_option("#f-requireSignatures", "true")
    page.fill("#f-pollInterval", "1h")
    page.check(f"input[name=cosignKeys][value='{ci_key}']")
    page.check(f"input[name=cosignKeys][value='{other_key}']")
    page.click("button:visible:has-text('Save configuration')")
    page.wait_for_selector(".problem")
    err = page.locator("#f-imageSubscriptions-0-error")
    check(err.count() == 1, "config: invalid image reference flagged at its line")
    err_text = err.inner_text() if err.count() else ""
    check("PROVIDER_CONFIG_INVALID_IMAGE_REFERENCE" in err_text and "Line 1" in err_text,
          f"config: the server's code and the line shown ({err_text!r})")
    check(page.locator("#f-imageSubscriptions-0").get_attribute("aria-invalid") == "true", "config: line marked invalid")
    check(page.locator("#f-imageSubscriptions-1").get_attribute("aria-invalid") is None, "config: a valid line not marked")
    lines = page.locator("fieldset.list-editor input[type=text]")
    values = [lines.nth(i).input_value() for i in range(lines.count())]
    check(values == ["Not A Valid/Ref!!", "registry.invalid/unwanted:1", VEX_IMAGE],
          f"config: typed and pasted lines kept in order ({values})")
    check(page.locator(f"input[name=cosignKeys][value='{ci_key}']").is_checked(), "config: chosen keys kept")
    audit(page, "provider-config-error")

    # Without the script, a remove button goes to the server and back.
    csrf = page.locator("#config-form input[name=csrf]").get_attribute("value")
    body = urlencode([("csrf", csrf), ("imageSubscriptions", "a.example/x:1"), ("imageSubscriptions", "b.example/y:2"),
                      ("action", "remove:imageSubscriptions:0")])
    r = page.request.post(f"{URL}/console/providers/{PROVIDER}/config", data=body,
                          headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": URL})
    check(r.status == 200 and 'value="b.example/y:2"' in r.text() and "a.example/x:1" not in r.text()
          and "nothing is saved" in r.text(), f"config: remove without script, server side ({r.status})")

    # Remove by keyboard: line 2, then the bad line 1 (in place).
    page.focus("button[aria-label='Remove line 2']")
    page.keyboard.press("Enter")
    page.focus("button[aria-label='Remove line 1']")
    page.keyboard.press("Enter")
    values = [lines.nth(i).input_value() for i in range(lines.count())]
    check(values == [VEX_IMAGE], f"config: lines removed by keyboard ({values})")
    check(page.evaluate("document.activeElement.id") == "f-imageSubscriptions-0", "config: focus stays in the list")
    page.click("button:has-text('Validate only')")
    page.wait_for_selector(".notice")
    check("valid (nothing was saved)" in page.locator(".notice").inner_text(), "config: validate only says valid")
    check("is not ready" in page.locator("section.panel").first.inner_text(), "config: validate only saved nothing")
    # Enter in a line saves (the default button), never removes a line.
    page.focus("#f-imageSubscriptions-0")
    page.keyboard.press("Enter")
    page.wait_for_selector(".notice")
    check("Configuration saved" in page.locator(".notice").inner_text(), "config: Enter saves")
    check("configuration is ready" in page.locator("section.panel").first.inner_text(), "config: ready after save")
    check(page.locator("#f-imageSubscriptions-0").input_value() == VEX_IMAGE
          and page.locator("fieldset.list-editor input[type=text]").count() == 1, "config: saved subscription shown")
    check(page.locator("#f-cosignMode").input_value() == "keypair", "config: saved cosign mode shown")
    check(page.locator(f"input[name=cosignKeys][value='{other_key}']").is_checked(), "config: slot-uploaded key saved")

    # The keys are now in use: the artifact store refuses to delete them.
    page.goto(f"{URL}/console/providers/{PROVIDER}")
    page.click(f"button[aria-label='Delete artifact {ci_key}']")
    page.wait_for_selector(".problem")
    check(problem_shown(page, "Artifact in use", ""), "config: a key in a slot cannot be deleted")


def provider_status_flow(page):
    """Run now (CSRF-protected), last run and per-image results."""
    page.goto(f"{URL}/console/providers/{PROVIDER}/status")
    r = page.request.post(f"{URL}/console/providers/{PROVIDER}/run", form={}, max_redirects=0)
    check(r.status == 403 and "CSRF" in r.text(), f"run without CSRF token refused ({r.status})")
    result = ""
    for _ in range(5):
        page.click("button:has-text('Run now')")
        page.wait_for_selector(".notice")
        result = page.locator(".notice").inner_text()
        if "busy" not in result:  # the scheduler's own first run held the lease
            break
        page.wait_for_timeout(1000)
    check("Run finished: succeeded" in result, f"run now: succeeded ({result!r})")
    last = page.locator("dl.meta").inner_text()
    check("succeeded" in last and "Finished" in last, "status: last run shown")
    rows = page.locator("table.images tbody tr")
    row_text = rows.first.inner_text() if rows.count() else ""
    check(rows.count() == 1 and VEX_IMAGE in row_text and "succeeded" in row_text, f"status: per-image result ({row_text!r})")
    check(page.request.get(page.url).headers.get("refresh") is None, "status: no reload when no run is in progress")
    audit(page, "provider-status")

    # A run in progress (a row without a finish time): the page reloads itself.
    db = sqlite3.connect(os.path.join(DATA, "stella.db"))
    db.execute(
        "UPDATE vex_provider_runs SET finished_at = NULL WHERE tenant_id = 'default' AND provider_id = ? AND image = ''",
        (PROVIDER,),
    )
    db.commit()
    r = page.request.get(f"{URL}/console/providers/{PROVIDER}/status")
    check(r.headers.get("refresh") == "3", f"status: in progress, Refresh header ({r.headers.get('refresh')})")
    check("in progress" in r.text(), "status: in progress said")
    db.execute(
        "UPDATE vex_provider_runs SET finished_at = started_at WHERE tenant_id = 'default' AND finished_at IS NULL"
    )
    db.commit()
    db.close()


def vex_flow(page):
    """Search by vulnerability and by product; consensus with its conflict."""
    page.goto(f"{URL}/console/vex")
    audit(page, "vex-empty")
    page.fill("#vulnerability", "CVE-1999-0000")
    page.click("button:has-text('Search')")
    page.wait_for_url("**/console/vex?*")
    check("No statements match" in page.locator("main").inner_text(), "vex: an unknown vulnerability: none, said so")

    page.fill("#product", VEX_PRODUCT)
    page.fill("#vulnerability", VEX_CVE)
    page.click("button:has-text('Search')")
    page.wait_for_selector("table.statements")
    rows = page.locator("table.statements tbody tr")
    check(rows.count() == 2, f"vex: both issuers' statements listed ({rows.count()})")
    table = page.locator("table.statements").inner_text()
    check("not_affected" in table and "affected" in table, "vex: statuses shown")
    check("vulnerable_code_not_present" in table and "action: upgrade" in table, "vex: justification and action shown")
    check(HOSTILE_IMPACT in page.locator("table.statements").text_content(), "vex: hostile impact statement shown as text")
    check(page.locator("main img").count() == 0 and page.evaluate("window.__pwned === undefined"),
          "vex: hostile impact statement made no element and ran no script")
    digests = page.locator("table.statements td[data-label='Evidence digest']").all_inner_texts()
    check(len(digests) == 2 and all(d.startswith("sha256:") for d in digests), f"vex: evidence digests ({digests})")
    consensus = page.locator("section.consensus")
    check(consensus.count() == 1, "vex: one consensus for the pair")
    ctext = consensus.inner_text() if consensus.count() else ""
    check(VEX_CVE in ctext and "Conflict" in ctext, f"vex: consensus shows the conflict ({ctext!r})")
    check(consensus.locator("li").count() == 2, "vex: both contributions listed")
    audit(page, "vex-results")

    # Only one issuer's statements: the link keeps product and vulnerability.
    first_issuer = page.locator("table.statements td[data-label='Issuer'] span.mono").first.inner_text().strip()
    page.locator("table.statements a:has-text('Only this issuer')").first.click()
    page.wait_for_selector("table.statements")
    rows = page.locator("table.statements tbody tr")
    issuers = page.locator("table.statements td[data-label='Issuer'] span.mono").all_inner_texts()
    check(rows.count() == 1 and issuers == [first_issuer], f"vex: issuer filter ({issuers})")
    check(page.locator("#issuer").input_value() == first_issuer and page.locator("#product").input_value() == VEX_PRODUCT,
          "vex: the search keeps product and issuer")
    page.fill("#issuer", "key:sha256:" + "0" * 64)
    page.click("button:has-text('Search')")
    page.wait_for_url("**/console/vex?*")
    check("No statements match" in page.locator("main").inner_text(), "vex: an unknown issuer: none, said so")
    audit(page, "vex-issuer")


def wait_finished(page):
    """Waits until console.js has swapped in the final state (no reload)."""
    page.wait_for_selector("#export-live[data-finished=true]", state="attached", timeout=120000)


def export_flow(page, acme):
    """Exports: a field error, an export created and followed live to the
    end, its download and verification; a failing export's reason; another
    tenant's export never shown."""
    admin = api_token("admin", ADMIN_SECRET)
    # Another tenant's export (of the same image).
    r = requests.post(
        f"{URL}/exports",
        headers={"Authorization": f"Bearer {acme}"},
        json={"profile": "mirror:full", "selection": {"images": [IMAGE]}, "options": {"plainHttp": True}},
        timeout=10,
    )
    check(r.status_code == 202, f"acme export accepted ({r.status_code})")
    acme_export = r.json()["id"]

    page.goto(f"{URL}/console/exports")
    check(page.locator("nav a[aria-current=page]").inner_text() == "Exports", "exports: nav entry current")
    audit(page, "exports")

    # A bad reference: the API's field error next to the images field.
    page.fill("#images", "not a reference!!")
    page.check("#plain-http")
    page.click("button:has-text('Create export')")
    page.wait_for_selector(".problem")
    check(page.locator("#images-error").count() == 1, "bad image reference: field-level error")
    check("Line 1" in page.locator("#images-error").inner_text(), "field error names the line")
    check(page.locator("#images").input_value() == "not a reference!!", "typed value kept")
    audit(page, "exports-error")

    # A real export, followed live.
    page.fill("#images", IMAGE)
    page.select_option("#profile", "mirror:full")
    page.check("#sign")
    page.check("#plain-http")
    page.click("button:has-text('Create export')")
    page.wait_for_url("**/console/exports/*")
    export_id = page.url.rstrip("/").rsplit("/", 1)[1]
    initial = page.locator("#export-live").get_attribute("data-initial-status")
    check(initial in ("queued", "running"), f"export page opened while the job runs ({initial})")
    page.evaluate("window.__sameDocument = true")
    wait_finished(page)
    check(page.evaluate("window.__sameDocument === true"), "export finished without a page reload")
    status = page.locator("#export-status").inner_text()
    check(status == "succeeded", f"live status reached succeeded ({status})")
    bar = page.evaluate("[document.getElementById('export-progress').value, document.getElementById('export-progress').max]")
    check(bar[0] == bar[1] and bar[1] > 1, f"progress bar full ({bar})")
    job = requests.get(f"{URL}/exports/{export_id}", headers={"Authorization": f"Bearer {admin}"}, timeout=10).json()
    check(job["status"] == "succeeded", f"API agrees: succeeded ({job.get('status')}, {job.get('reason')})")
    check(page.locator("#export-sha256").inner_text() == job["file"]["sha256"], "page sha256 = API sha256")
    check(page.locator("#export-manifest-digest").inner_text() == job["manifestDigest"], "manifest digest shown")
    check(page.locator("#export-verified").inner_text() == "yes", "verification: verified yes")
    signer = page.locator("#export-signer").inner_text()
    check(signer not in ("", "—") and signer == job["verification"].get("signer"), f"signer key id shown ({signer})")
    check(page.locator("#export-download").count() == 1, "download link shown")
    check(page.locator("#export-finished").inner_text() == job.get("finishedAt"), "finish time swapped in")
    audit(page, "export-succeeded")

    # The download through the console: the bytes the API describes.
    with page.expect_download() as info:
        page.click("#export-download")
    data = open(info.value.path(), "rb").read()
    check(len(data) == job["file"]["size"], f"download size = API size ({len(data)})")
    check(hashlib.sha256(data).hexdigest() == job["file"]["sha256"], "download sha256 = API sha256")
    r = page.request.get(f"{URL}/console/exports/{export_id}/download", headers={"Range": "bytes=0-99"})
    check(r.status == 206 and r.body() == data[:100], f"Range passed through ({r.status})")

    # The list shows it; never the other tenant's.
    page.goto(f"{URL}/console/exports")
    check(export_id in page.locator("table.exports").inner_text(), "export listed")
    check(acme_export not in page.content(), "another tenant's export never listed")
    audit(page, "exports-list")
    r = page.request.get(f"{URL}/console/exports/{acme_export}")
    check(r.status == 404, f"another tenant's export page: 404 ({r.status})")
    r = page.request.get(f"{URL}/console/exports/{acme_export}/download")
    check(r.status == 404, f"another tenant's download: 404 ({r.status})")

    # A delta on the first export: "since" offers it and the API gets it.
    page.select_option("#profile", "mirror:delta")
    check(page.locator(f"#since option[value='{export_id}']").count() == 1, "since offers the succeeded export")
    page.select_option("#since", export_id)
    page.fill("#images", IMAGE)
    page.check("#plain-http")
    page.click("button:has-text('Create export')")
    page.wait_for_url("**/console/exports/*")
    delta_id = page.url.rstrip("/").rsplit("/", 1)[1]
    if page.locator("#export-live").get_attribute("data-events"):
        wait_finished(page)
    delta = requests.get(f"{URL}/exports/{delta_id}", headers={"Authorization": f"Bearer {admin}"}, timeout=10).json()
    check(delta["request"]["options"].get("since") == export_id and delta["profile"] == "mirror:delta",
          f"delta created with since = the first export ({delta['status']}, {delta.get('reason')})")
    check(page.locator("#export-status").inner_text() == delta["status"], "delta page shows the API's status")
    page.goto(f"{URL}/console/exports")

    # A failing export (unknown tag) shows its reason, live.
    page.fill("#images", IMAGE.rsplit(":", 1)[0] + ":no-such-tag")
    page.check("#plain-http")
    page.click("button:has-text('Create export')")
    page.wait_for_url("**/console/exports/*")
    failed_id = page.url.rstrip("/").rsplit("/", 1)[1]
    if page.locator("#export-live").get_attribute("data-events"):
        wait_finished(page)
    check(page.locator("#export-status").inner_text() == "failed", "unknown tag: status failed")
    reason = page.locator("#export-reason").inner_text() if page.locator("#export-reason").count() else ""
    check("no-such-tag" in reason or "not found" in reason.lower() or "unknown" in reason.lower(),
          f"failure reason shown ({reason!r})")
    check(page.locator("#export-download").count() == 0, "no download for a failed export")
    check(page.locator("#export-finished").inner_text() not in ("", "—"), "finish time shown")
    audit(page, "export-failed")

    # Delete it (confirmed, CSRF): listed as deleted.
    page.click("button:has-text('Delete export')")
    page.wait_for_selector(".notice")
    check(f"Export {failed_id} deleted" in page.locator(".notice").inner_text(), "export deleted")
    r = requests.get(f"{URL}/exports/{failed_id}", headers={"Authorization": f"Bearer {admin}"}, timeout=10)
    check(r.json().get("status") == "deleted", "API: deleted")


def main():
    # Another tenant stages an artifact the console must never show.
    acme = api_token("acme-bot", ACME_SECRET)
    r = requests.post(
        f"{URL}/excititor/providers/{PROVIDER}/artifacts",
        headers={"Authorization": f"Bearer {acme}"},
        files={"file": ("acme.pem", b"acme tenant secret key", "application/x-pem-file")},
        timeout=10,
    )
    r.raise_for_status()
    acme_id = r.json()["artifactId"]

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.on("dialog", lambda d: d.accept())
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        # Not signed in: sent to sign-in.
        page.goto(f"{URL}/console/")
        check(page.url.endswith("/console/sign-in"), "not signed in: redirected to sign-in")
        csp = page.request.get(f"{URL}/console/sign-in").headers.get("content-security-policy", "")
        check("script-src 'self'" in csp and "unsafe-inline" not in csp, "CSP without unsafe-inline")
        audit(page, "sign-in")

        # A wrong secret: the problem's title and detail are shown.
        page.fill("#client_id", "admin")
        page.fill("#client_secret", "wrong")
        page.click("button:has-text('Sign in') >> nth=0")
        check(
            problem_shown(page, "Invalid client", "client id or secret is wrong"),
            "wrong secret: problem title and detail shown",
        )
        audit(page, "sign-in-error")

        # Sign in with the keyboard alone.
        page.goto(f"{URL}/console/sign-in")
        for _ in range(10):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "client_id":
                break
        check(page.evaluate("document.activeElement.id") == "client_id", "keyboard: Tab reaches the client id")
        page.keyboard.type("admin")
        page.keyboard.press("Tab")
        page.keyboard.type(ADMIN_SECRET)
        page.keyboard.press("Enter")
        page.wait_for_url("**/console/providers")
        check(page.locator("h1").inner_text() == "Providers", "signed in: providers catalog")
        cookie = next(c for c in context.cookies() if c["name"] == "stella_console")
        check(cookie["httpOnly"] and cookie["sameSite"] == "Strict", "session cookie HttpOnly, SameSite=Strict")
        check(not any(c["value"].startswith("eyJ") for c in context.cookies()), "no token in any cookie")
        audit(page, "providers")

        # The provider's artifact store: upload a file with a hostile name.
        page.click(f"a[aria-label='Artifacts of {PROVIDER}']")
        page.wait_for_url(f"**/console/providers/{PROVIDER}")
        payload = b"-----BEGIN PUBLIC KEY-----\nnot really a key\n-----END PUBLIC KEY-----\n"
        page.set_input_files(
            "#artifact-file",
            files=[{"name": HOSTILE_NAME, "mimeType": "application/x-pem-file", "buffer": payload}],
        )
        page.click("button:has-text('Stage artifact')")
        page.wait_for_selector(".notice")
        notice = page.locator(".notice")
        check(notice.locator("strong").inner_text() == HOSTILE_NAME, "hostile file name shown as text")
        check(notice.locator("img").count() == 0, "hostile file name made no element")
        check(page.evaluate("window.__pwned === undefined"), "hostile file name ran no script")
        digest = hashlib.sha256(payload).hexdigest()
        check(digest in notice.inner_text(), "staged metadata: sha256 matches the file")
        check("admin" in notice.inner_text() and f"{len(payload)} B" in notice.inner_text(), "staged by and size shown")
        rows = page.locator("tbody tr")
        check(rows.count() == 1 and digest in rows.first.inner_text(), "artifact listed")
        check(acme_id not in page.content(), "another tenant's artifact never appears")
        artifact_id = notice.locator("dd").first.inner_text().strip()
        audit(page, "provider-artifacts")

        # 409: a provider configuration references the artifact.
        db = sqlite3.connect(os.path.join(DATA, "stella.db"))
        db.execute(
            "INSERT INTO vex_provider_artifact_uses (tenant_id, provider_id, field_key, artifact_id) VALUES (?,?,?,?)",
            ("default", PROVIDER, "cosignKey", artifact_id),
        )
        db.commit()
        page.click(f"button[aria-label='Delete artifact {artifact_id}']")
        page.wait_for_selector(".problem")
        check(problem_shown(page, "Artifact in use", "referenced by a provider configuration"), "409 title and detail")
        check("Clear the slot" in page.locator(".problem").inner_text(), "409 explained")
        check(page.locator("tbody tr").count() == 1, "artifact kept after 409")
        audit(page, "provider-in-use")
        db.execute("DELETE FROM vex_provider_artifact_uses")
        db.commit()
        db.close()

        # CSRF: a POST without the token, and one from another origin, are refused.
        page.goto(f"{URL}/console/providers/{PROVIDER}")
        delete_url = f"{URL}/console/providers/{PROVIDER}/artifacts/{artifact_id}/delete"
        r = page.request.post(delete_url, form={}, max_redirects=0)
        check(r.status == 403 and "CSRF" in r.text(), f"POST without CSRF token refused ({r.status})")
        csrf = page.locator("input[name=csrf]").first.get_attribute("value")
        r = page.request.post(delete_url, form={"csrf": csrf}, headers={"Origin": "http://evil.test"}, max_redirects=0)
        check(r.status == 403, f"cross-origin POST refused ({r.status})")
        page.reload()
        check(page.locator("tbody tr").count() == 1, "artifact kept after refused POSTs")

        # Another tenant's artifact cannot be deleted through the console.
        r = page.request.post(
            f"{URL}/console/providers/{PROVIDER}/artifacts/{acme_id}/delete", form={"csrf": csrf}, max_redirects=0
        )
        check(r.status == 404, f"another tenant's artifact: 404 ({r.status})")
        r = requests.get(
            f"{URL}/excititor/providers/{PROVIDER}/artifacts/{acme_id}",
            headers={"Authorization": f"Bearer {acme}"},
            timeout=10,
        )
        check(r.status_code == 200, "another tenant's artifact still there")

        # Delete for real.
        page.click(f"button[aria-label='Delete artifact {artifact_id}']")
        page.wait_for_selector(".notice")
        check("Deleted artifact" in page.locator(".notice").inner_text(), "deleted")
        check(page.locator("tbody tr").count() == 0, "no artifact left")

        provider_config_flow(page)
        provider_status_flow(page)
        vex_flow(page)
        export_flow(page, acme)

        # Image check: a bad reference is flagged at its field.
        page.goto(f"{URL}/console/check")
        page.fill("#reference", "<script>window.__pwned=2</script>")
        page.check("#plain-http")
        page.click("button:has-text('Check image')")
        page.wait_for_selector(".problem")
        check(page.locator("#reference-error").count() == 1, "invalid reference: field-level error")
        check(page.evaluate("window.__pwned === undefined"), "reference text ran no script")
        check(page.locator("#reference").get_attribute("aria-invalid") == "true", "invalid field marked")
        audit(page, "check-error")

        page.fill("#reference", IMAGE)
        page.select_option("#policy", "release")
        page.click("button:has-text('Check image')")
        page.wait_for_selector(".verdict")
        verdict = page.locator(".verdict").inner_text()
        check(verdict.startswith("FAIL"), f"report verdict shown ({verdict!r})")
        tree = page.locator("ul.tree").first.inner_text()
        check("provenance" in tree and "satisfied" in tree, "provenance requirement satisfied")
        check("vex" in tree and "missing" in tree, "vex requirement missing")
        check("sbom" in tree, "sbom requirement listed")
        all_evidence = page.locator("ul.tree").last
        check(all_evidence.locator("li").count() == 3, "three pieces of evidence listed")
        evidence_text = all_evidence.text_content()
        check(HOSTILE_PREDICATE in evidence_text, f"registry-borne predicate type shown as text ({evidence_text!r})")
        check(page.locator("main script").count() == 0, "registry-borne predicate type made no element")
        check(page.evaluate("window.__pwned === undefined"), "registry-borne text ran no script")
        audit(page, "check-report")

        # A registry that is not there: 502 with title and detail.
        page.fill("#reference", "127.0.0.1:9/nothing/here:v1")
        page.click("button:has-text('Check image')")
        page.wait_for_selector(".problem")
        check(problem_shown(page, "Upstream failed", ""), "unreachable registry: problem shown")

        # Unknown page: a problem, never a blank page.
        page.goto(f"{URL}/console/no-such-page")
        check(problem_shown(page, "Not found", "no console page"), "unknown page: problem shown")

        # Sign out, then the old session is refused.
        page.goto(f"{URL}/console/providers")
        old = next(c for c in context.cookies() if c["name"] == "stella_console")["value"]
        csrf = page.locator("input[name=csrf]").first.get_attribute("value")
        page.click("button:has-text('Sign out')")
        page.wait_for_url("**/console/sign-in?out=1")
        check("signed out" in page.locator(".notice").inner_text(), "signed out notice")
        audit(page, "signed-out")
        page.goto(f"{URL}/console/providers")
        check(page.url.endswith("/console/sign-in"), "after sign-out: providers redirect to sign-in")
        replay = requests.post(
            f"{URL}/console/providers/{PROVIDER}/artifacts/{artifact_id}/delete",
            data={"csrf": csrf},
            cookies={"stella_console": old},
            allow_redirects=False,
            timeout=10,
        )
        check(replay.status_code == 401, f"old session cookie refused ({replay.status_code})")
        check("Not signed in" in replay.text, "refusal says why")
        # This server trusts no proxy: a client's X-Forwarded-Proto changes nothing.
        r = requests.get(f"{URL}/console/sign-in", headers={"X-Forwarded-Proto": "https"}, timeout=10)
        check("Secure" not in r.headers.get("set-cookie", ""), "X-Forwarded-Proto from an untrusted peer ignored")

        # Sign in again and keep the browser's state for the restart phase.
        page.goto(f"{URL}/console/sign-in")
        page.fill("#client_id", "admin")
        page.fill("#client_secret", ADMIN_SECRET)
        page.click("button:has-text('Sign in') >> nth=0")
        page.wait_for_url("**/console/providers")
        context.storage_state(path=STATE)
        check(not errors, f"no script errors ({errors})")
        browser.close()

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def session_rows():
    db = sqlite3.connect(os.path.join(DATA, "stella.db"))
    rows = db.execute("SELECT id_hash, sealed FROM console_sessions").fetchall()
    db.close()
    return rows


def sign_in_through_proxy():
    """The sign-in form through a TLS proxy the server trusts: the cookies
    it sets carry Secure (sent by hand: a Secure cookie would not go back
    over plain http)."""
    forwarded = {"X-Forwarded-Proto": "https"}
    r = requests.get(f"{URL}/console/sign-in", headers=forwarded, timeout=10)
    login_cookie = r.headers.get("set-cookie", "")
    check("stella_console_login=" in login_cookie and "; Secure" in login_cookie,
          f"trusted proxy over TLS: login cookie Secure ({login_cookie!r})")
    login = login_cookie.split(";")[0].split("=", 1)[1]
    r = requests.post(
        f"{URL}/console/sign-in",
        data={"mode": "credentials", "login": login, "client_id": "admin", "client_secret": ADMIN_SECRET, "scope": ""},
        headers={**forwarded, "Cookie": f"stella_console_login={login}", "Origin": URL},
        allow_redirects=False,
        timeout=10,
    )
    session_cookie = [c for c in r.headers.get("set-cookie", "").split(", ") if c.startswith("stella_console=")]
    check(r.status_code == 303 and session_cookie and "; Secure" in session_cookie[0]
          and "HttpOnly" in session_cookie[0] and "SameSite=Strict" in session_cookie[0],
          f"trusted proxy over TLS: session cookie Secure, HttpOnly, SameSite=Strict ({session_cookie})")
    r = requests.get(f"{URL}/console/sign-in", timeout=10)
    check("Secure" not in r.headers.get("set-cookie", ""), "the same proxy over plain http: no Secure")


def restart_phase():
    """After `stella serve` restarted on the same data directory: the
    browser is still signed in; sign out deletes the session for good."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(storage_state=STATE, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(f"{URL}/console/providers")
        check(page.url.endswith("/console/providers") and page.locator("h1").inner_text() == "Providers",
              f"after a restart: still signed in ({page.url})")
        cookie = next(c for c in context.cookies() if c["name"] == "stella_console")["value"]
        rows = session_rows()
        hashes = [r[0] for r in rows]
        check(hashlib.sha256(cookie.encode()).hexdigest() in hashes, "stored session keyed by the SHA-256 of its id")
        check(all(cookie not in h for h in hashes) and not any(b"eyJ" in bytes(r[1]) or b"admin" in bytes(r[1]) for r in rows),
              "stored sessions hold neither the id nor the token nor the subject in the clear")
        sign_in_through_proxy()

        # This server allows image checks on the test registry only.
        page.goto(f"{URL}/console/check")
        page.fill("#reference", "127.0.0.1:9/nothing/here:v1")
        page.check("#plain-http")
        page.click("button:has-text('Check image')")
        page.wait_for_selector(".problem")
        err = page.locator("#reference-error")
        check(err.count() == 1 and "REGISTRY_NOT_ALLOWED" in err.inner_text(),
              "image check: a registry outside the allow-list refused at the reference field")
        page.fill("#reference", IMAGE)
        if not page.locator("#plain-http").is_checked():
            page.check("#plain-http")
        page.select_option("#policy", "release")
        page.click("button:has-text('Check image')")
        page.wait_for_selector(".verdict")
        check(page.locator(".verdict").inner_text().startswith("FAIL"), "image check: an allowed registry is checked")

        csrf = page.locator("input[name=csrf]").first.get_attribute("value")
        page.click("button:has-text('Sign out')")
        page.wait_for_url("**/console/sign-in?out=1")
        check(hashlib.sha256(cookie.encode()).hexdigest() not in [r[0] for r in session_rows()],
              "sign-out deleted the stored session")
        replay = requests.post(
            f"{URL}/console/sign-out", data={"csrf": csrf}, cookies={"stella_console": cookie},
            allow_redirects=False, timeout=10,
        )
        check(replay.status_code == 401, f"after sign-out: the old cookie refused ({replay.status_code})")
        r = requests.get(f"{URL}/console/providers", cookies={"stella_console": cookie}, allow_redirects=False, timeout=10)
        check(r.status_code == 303 and r.headers.get("location") == "/console/sign-in",
              f"after sign-out: pages send the old cookie to sign-in ({r.status_code})")
        browser.close()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(restart_phase() if sys.argv[1:] == ["restart"] else main())
