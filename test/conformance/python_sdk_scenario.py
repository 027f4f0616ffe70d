"""Run the conformance scenario through the official Dropbox Python SDK.

Usage: python3 python_sdk_scenario.py EMULATOR_URL, with DROPBOX_APP_KEY, DROPBOX_APP_SECRET
and DROPBOX_REFRESH_TOKEN in the environment, so that no secret appears in a command line.

The SDK (dropbox 11.34, Debian's python3-dropbox) builds https://{api,content,notify}
.dropboxapi.com URLs from hard-coded hosts. A requests adapter mounted on the SDK's session
rewrites those origins to the emulator's http://127.0.0.1:PORT and raises for any other URL,
so no request can leave the machine. Each step prints one JSON line: {"step", "ok", "error"}.
"""

import json
import os
import sys
import threading
import time
import traceback
import urllib.parse

import dropbox
import requests
from dropbox import files
from dropbox.exceptions import ApiError

DROPBOX_ORIGINS = {
    "https://api.dropboxapi.com",
    "https://content.dropboxapi.com",
    "https://notify.dropboxapi.com",
}
HELLO_HASH = "9595c9df90075148eb06860365df33584b75bff782a510c6cd4883a419833d50"


class LoopbackAdapter(requests.adapters.HTTPAdapter):
    """Sends Dropbox API requests to the emulator and rejects every other URL."""

    def __init__(self, emulator_url):
        super().__init__()
        self.emulator = urllib.parse.urlsplit(emulator_url)
        if self.emulator.hostname != "127.0.0.1":
            raise ValueError(f"emulator URL {emulator_url} is not on 127.0.0.1")
        self.requested = []

    def send(self, request, **kwargs):
        url = urllib.parse.urlsplit(request.url)
        self.requested.append(request.url)
        if f"{url.scheme}://{url.netloc}" not in DROPBOX_ORIGINS:
            raise RuntimeError(f"the SDK requested {request.url}, which is not a Dropbox API origin")
        request.url = urllib.parse.urlunsplit(("http", self.emulator.netloc, url.path, url.query, ""))
        return super().send(request, **kwargs)


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def api_error(call):
    """Runs call, which must raise ApiError, and returns the error union."""
    try:
        call()
    except ApiError as error:
        return error.error
    raise AssertionError("expected an ApiError")


class Scenario:
    def __init__(self, url, app_key, app_secret, refresh_token):
        self.adapter = LoopbackAdapter(url)
        session = requests.Session()
        session.mount("https://", self.adapter)
        session.mount("http://", self.adapter)
        self.dbx = dropbox.Dropbox(
            oauth2_refresh_token=refresh_token,
            app_key=app_key,
            app_secret=app_secret,
            session=session,
            max_retries_on_error=0,
        )
        self.file = None

    def token_refresh(self):
        account = self.dbx.users_get_current_account()
        expect(account.account_id.startswith("dbid:"), f"account id {account.account_id}")
        expect(self.adapter.requested[0] == "https://api.dropboxapi.com/oauth2/token",
               f"first request {self.adapter.requested[0]}")

    def create_folder(self):
        created = self.dbx.files_create_folder_v2("/Conf")
        expect(created.metadata.path_lower == "/conf", created.metadata.path_lower)

    def upload_one_call(self):
        self.file = self.dbx.files_upload(b"hello", "/Conf/hello.txt")
        expect(self.file.size == 5, f"size {self.file.size}")
        expect(self.file.content_hash == HELLO_HASH, self.file.content_hash)

    def upload_session(self):
        started = self.dbx.files_upload_session_start(b"\x01" * 1000)
        cursor = files.UploadSessionCursor(started.session_id, 1000)
        self.dbx.files_upload_session_append_v2(b"\x02" * 500, cursor)
        cursor = files.UploadSessionCursor(started.session_id, 1500)
        finished = self.dbx.files_upload_session_finish(b"", cursor, files.CommitInfo("/Conf/session.bin"))
        expect(finished.size == 1500, f"size {finished.size}")

    def incorrect_offset(self):
        started = self.dbx.files_upload_session_start(b"\x00" * 10)
        cursor = files.UploadSessionCursor(started.session_id, 3)
        error = api_error(lambda: self.dbx.files_upload_session_append_v2(b"\x00" * 10, cursor))
        expect(error.is_incorrect_offset(), f"error {error}")
        expect(error.get_incorrect_offset().correct_offset == 10, f"error {error}")

    def list_and_paginate(self):
        for name in "abcd":
            self.dbx.files_upload(name.encode(), f"/Conf/page-{name}.txt")
        page = self.dbx.files_list_folder("/conf", limit=2)
        expect(len(page.entries) <= 2, f"{len(page.entries)} entries on a page of limit 2")
        expect(page.has_more, "has_more false on the first page")
        names = [entry.name for entry in page.entries]
        while page.has_more:
            page = self.dbx.files_list_folder_continue(page.cursor)
            names += [entry.name for entry in page.entries]
        expected = ["hello.txt", "page-a.txt", "page-b.txt", "page-c.txt", "page-d.txt", "session.bin"]
        expect(sorted(names) == expected, f"names {sorted(names)}")

    def metadata_by_path_id_rev(self):
        by_path = self.dbx.files_get_metadata("/CONF/Hello.txt")
        expect(isinstance(by_path, files.FileMetadata), f"type {type(by_path)}")
        expect(by_path.path_display == "/Conf/hello.txt", by_path.path_display)
        by_id = self.dbx.files_get_metadata(self.file.id)
        expect(by_id.path_lower == "/conf/hello.txt", by_id.path_lower)
        by_rev = self.dbx.files_get_metadata(f"rev:{self.file.rev}")
        expect(by_rev.path_lower == "/conf/hello.txt", by_rev.path_lower)

    def ranged_download(self):
        ranged = self.dbx.clone(headers={"Range": "bytes=1-3"})
        metadata, response = ranged.files_download("/Conf/hello.txt")
        expect(response.status_code == 206, f"status {response.status_code}")
        expect(response.content == b"ell", f"body {response.content!r}")
        expect(metadata.size == 5, f"size {metadata.size}")

    def move_copy_delete(self):
        moved = self.dbx.files_move_v2("/Conf/page-a.txt", "/Conf/moved.txt")
        expect(moved.metadata.path_lower == "/conf/moved.txt", moved.metadata.path_lower)
        copied = self.dbx.files_copy_v2("/Conf/moved.txt", "/Conf/copied.txt")
        expect(copied.metadata.path_lower == "/conf/copied.txt", copied.metadata.path_lower)
        deleted = self.dbx.files_delete_v2("/Conf/moved.txt")
        expect(deleted.metadata.path_lower == "/conf/moved.txt", deleted.metadata.path_lower)
        error = api_error(lambda: self.dbx.files_get_metadata("/Conf/moved.txt"))
        expect(error.is_path() and error.get_path().is_not_found(), f"error {error}")

    def longpoll_sees_change(self):
        cursor = self.dbx.files_list_folder_get_latest_cursor("/Conf").cursor
        outcome = {}
        poll = threading.Thread(
            target=lambda: outcome.update(result=self.dbx.files_list_folder_longpoll(cursor, 30)))
        started = time.monotonic()
        poll.start()
        time.sleep(0.2)
        self.dbx.files_upload(b"new", "/Conf/new.txt")
        poll.join(10)
        expect("result" in outcome, "longpoll did not return within 10 s of the change")
        expect(outcome["result"].changes, "longpoll returned changes=false")
        expect(time.monotonic() - started < 5, "longpoll took 5 s or more")
        changes = self.dbx.files_list_folder_continue(cursor)
        names = [entry.name for entry in changes.entries]
        expect("new.txt" in names, f"continue returned {names}")

    def error_tags(self):
        missing = api_error(lambda: self.dbx.files_get_metadata("/Conf/missing.txt"))
        expect(missing.is_path() and missing.get_path().is_not_found(), f"error {missing}")
        conflict = api_error(lambda: self.dbx.files_create_folder_v2("/conf"))
        write_error = conflict.get_path()
        expect(write_error.is_conflict() and write_error.get_conflict().is_folder(), f"error {conflict}")

    def all_requests_local(self):
        expect(len(self.adapter.requested) > 10, f"{len(self.adapter.requested)} requests")


STEPS = [
    "token_refresh",
    "create_folder",
    "upload_one_call",
    "upload_session",
    "incorrect_offset",
    "list_and_paginate",
    "metadata_by_path_id_rev",
    "ranged_download",
    "move_copy_delete",
    "longpoll_sees_change",
    "error_tags",
    "all_requests_local",
]


def main(argv):
    env = os.environ
    scenario = Scenario(argv[1], env["DROPBOX_APP_KEY"], env["DROPBOX_APP_SECRET"], env["DROPBOX_REFRESH_TOKEN"])
    for step in STEPS:
        try:
            getattr(scenario, step)()
            report = {"step": step, "ok": True}
        except Exception as error:  # noqa: BLE001 - every failure becomes the step's report
            detail = "".join(traceback.format_exception_only(type(error), error)).strip()
            report = {"step": step, "ok": False, "error": detail}
        print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main(sys.argv)
