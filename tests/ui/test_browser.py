"""
The UI in a real browser, Debian's headless C{chromium}: the pages as
it builds them (content asserted on the DOM it dumps) and screenshots of
them; and, driven through C{chromedriver} with PyPI's C{selenium}, a
login, a delete through the UI that removes the tag, an anonymous visitor
with no way to delete, and keyboard navigation.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SkipTest, TestCase

from tests.support import startRegistry
from tests.ui.chromium import CHROMIUM, chromiumMissing, dumpDOM, screenshot
from tests.ui.content import SBOM, fill
from tests.ui.test_auth import _Fixture

CHROMEDRIVER = shutil.which("chromedriver") or ""


class ChromiumPagesTests(TestCase):
    """
    Each main page, rendered by chromium.
    """

    timeout = 180

    async def setUp(self) -> None:
        reason = chromiumMissing()
        if reason:
            raise SkipTest(reason)
        self.registry = await startRegistry(self, {"ui": {"enabled": True},
                                                   "storage": {"inmemory": {}, "delete": {"enabled": True}}})
        self.pushed = await fill(self, self.registry)

    async def check(self, path: str, expected: list[str]) -> None:
        url = self.registry.url + path
        dom = await dumpDOM(url)
        for text in expected:
            self.assertIn(text, dom, path)
        picture = self.mktemp() + ".png"
        await screenshot(url, picture)
        with open(picture, "rb") as f:
            data = f.read()
        self.assertTrue(data.startswith(b"\x89PNG\r\n\x1a\n"), path)
        # A blank page compresses to a few hundred bytes; text does not.
        self.assertGreater(len(data), 10000, path)

    async def test_repositories(self) -> None:
        await self.check("/ui/", ["<h1>Repositories</h1>", ">team/server</a>", ">library/alpine</a>"])

    async def test_repository(self) -> None:
        await self.check("/ui/r/team/server", ["<h1>team/server</h1>", ">multi</a>",
                                               "linux/amd64, linux/arm64/v8", "3 tags"])

    async def test_image(self) -> None:
        await self.check(f"/ui/r/team/server/-/manifest/{self.pushed.image}",
                         ["Image configuration", "/usr/bin/server", "MODE=production", SBOM, "Layers"])

    async def test_index(self) -> None:
        await self.check(f"/ui/r/team/server/-/manifest/{self.pushed.index}",
                         ["Platforms", "linux/arm64/v8", "application/vnd.oci.image.index.v1+json"])


def _driver() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="txregistry-selenium-")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--user-data-dir={profile}", "--window-size=1280,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.profile = profile
    return driver


class SeleniumTests(_Fixture, TestCase):
    """
    A person's session in chromium: every browser call runs in a thread,
    so that the in-process registry keeps serving.
    """

    timeout = 180

    async def setUp(self) -> None:
        reason = chromiumMissing() or ("" if CHROMEDRIVER else "chromedriver is not installed "
                                       "(apt-get install chromium-driver)")
        try:
            import selenium  # noqa: F401
        except ImportError:
            reason = reason or "selenium is not installed (pip install -e '.[test]')"
        if reason:
            raise SkipTest(reason)
        await self.makeRegistries()
        self.driver = await deferToThread(_driver)
        self.addCleanup(self._quit)

    def _quit(self) -> Any:
        def quit() -> None:
            self.driver.quit()
            shutil.rmtree(self.driver.profile, ignore_errors=True)

        return deferToThread(quit)

    def run_(self, function: Any, *args: Any) -> Any:
        return deferToThread(function, *args)

    async def test_deleteThroughTheUI(self) -> None:
        """
        Bob logs in with the form, deletes C{v1} with its button (and says
        yes when asked), and the tag is gone from the registry.
        """
        from selenium.webdriver.common.by import By

        driver = self.driver
        url = self.registry.url
        await self.run_(driver.get, url + "/ui/login?next=/ui/r/bob/app")

        def logIn() -> None:
            driver.find_element(By.ID, "username").send_keys("bob")
            driver.find_element(By.ID, "password").send_keys("b-pass")
            driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()

        await self.run_(logIn)
        self.assertEqual(await self.run_(lambda: driver.find_element(By.TAG_NAME, "h1").text), "bob/app")
        self.assertIn("Signed in as bob", await self.run_(lambda: driver.find_element(By.CLASS_NAME, "who").text))

        def delete() -> str:
            driver.find_element(By.CSS_SELECTOR, "button[aria-label='Delete tag v1']").click()
            alert = driver.switch_to.alert
            question = str(alert.text)
            alert.accept()
            return question

        self.assertIn("Delete tag v1?", await self.run_(delete))
        body = await self.run_(lambda: driver.find_element(By.TAG_NAME, "tbody").text)
        self.assertNotIn("v1", body)
        self.assertIn("v2", body)
        self.assertEqual(await self.tags("bob/app"), ["v2"])

    async def test_dismissedDeleteKeepsTheTag(self) -> None:
        """
        Saying no when asked deletes nothing.
        """
        from selenium.webdriver.common.by import By

        driver = self.driver
        await self.run_(driver.get, self.registry.url + "/ui/login?next=/ui/r/bob/app")

        def logInAndDismiss() -> None:
            driver.find_element(By.ID, "username").send_keys("bob")
            driver.find_element(By.ID, "password").send_keys("b-pass")
            driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
            driver.find_element(By.CSS_SELECTOR, "button[aria-label='Delete tag v1']").click()
            driver.switch_to.alert.dismiss()

        await self.run_(logInAndDismiss)
        self.assertEqual(await self.tags("bob/app"), ["v1", "v2"])

    async def test_anonymousCannotDelete(self) -> None:
        """
        An anonymous visitor sees the public repository with no delete
        button and no login of anyone else.
        """
        from selenium.webdriver.common.by import By

        driver = self.driver
        await self.run_(driver.get, self.registry.url + "/ui/r/public/app")
        self.assertEqual(await self.run_(lambda: driver.find_element(By.TAG_NAME, "h1").text), "public/app")
        self.assertEqual(await self.run_(lambda: driver.find_elements(By.CSS_SELECTOR, "button.danger")), [])
        self.assertEqual(await self.run_(lambda: driver.find_elements(By.CSS_SELECTOR, "form[action$='/delete']")), [])
        self.assertEqual(await self.tags("public/app"), ["v1", "v2"])

    async def test_keyboard(self) -> None:
        """
        The first Tab reaches the skip link, which takes the keyboard to
        the page's content; the search box can be reached and used with
        the keyboard alone.
        """
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        driver = self.driver
        await self.run_(driver.get, self.registry.url + "/ui/")

        def tabbing() -> list[str]:
            seen = []
            body = driver.find_element(By.TAG_NAME, "body")
            body.send_keys(Keys.TAB)
            seen.append(driver.switch_to.active_element.text)
            for _ in range(6):
                active = driver.switch_to.active_element
                if active.get_attribute("id") == "q":
                    active.send_keys("pub", Keys.ENTER)
                    return seen + ["searched"]
                active.send_keys(Keys.TAB)
            return seen

        seen = await self.run_(tabbing)
        self.assertEqual(seen[0], "Skip to content")
        self.assertEqual(seen[-1], "searched")
        self.assertTrue((await self.run_(lambda: driver.current_url)).endswith("/ui/?q=pub"))
        rows = await self.run_(lambda: driver.find_element(By.TAG_NAME, "tbody").text)
        self.assertIn("public/app", rows)

