#!/usr/bin/env python3
"""Checks that every table of the rendered guide fits the page at 1280 px.

Usage: book/check-tables.py [rendered book dir] [width]
       (defaults: target/book and 1280; run `mdbook build book` first)

Each page is loaded in headless Chromium at the given window width with a
script appended that compares each table's full width with the width of the
text column it sits in. A table wider than its column is cut off (the reader
must scroll it sideways): the check lists those and exits 1.
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

MEASURE = """
<script>
addEventListener('load', () => {
  const column = document.querySelector('main');
  const out = [];
  document.querySelectorAll('main table').forEach((t, i) => {
    if (t.scrollWidth > column.clientWidth + 1) {
      const head = (t.querySelector('th') || t).textContent.trim().slice(0, 40);
      out.push(`table ${i + 1} ("${head}"): ${t.scrollWidth}px in a ${column.clientWidth}px column`);
    }
  });
  const pre = document.createElement('pre');
  pre.id = 'table-check';
  pre.textContent = 'TABLE-CHECK\\n' + out.join('\\n') + '\\nTABLE-CHECK-END';
  document.body.appendChild(pre);
});
</script>
"""


def browser():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("check-tables: no Chromium found (apt-get install chromium)")


def check(page, chrome, width, scratch):
    html = open(page, encoding="utf-8").read()
    if "<table" not in html:
        return []
    probe = os.path.join(os.path.dirname(page), f"probe-{os.path.basename(page)}")
    with open(probe, "w", encoding="utf-8") as f:
        f.write(html.replace("</body>", MEASURE + "</body>"))
    try:
        out = subprocess.run(
            [chrome, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={scratch}",
             f"--window-size={width},900", "--virtual-time-budget=3000", "--dump-dom", "file://" + os.path.abspath(probe)],
            capture_output=True, text=True, timeout=60, check=False,
        ).stdout
    finally:
        os.remove(probe)
    found = re.search(r"TABLE-CHECK\n(.*?)TABLE-CHECK-END", out, re.S)
    if not found:
        return [f"could not measure (Chromium printed no result for {page})"]
    return [line for line in found.group(1).splitlines() if line.strip()]


def main():
    book = sys.argv[1] if len(sys.argv) > 1 else "target/book"
    width = int(sys.argv[2]) if len(sys.argv) > 2 else 1280
    pages = sorted(p for p in glob.glob(os.path.join(book, "*.html")) if not p.endswith(("print.html", "404.html", "toc.html")))
    if not pages:
        sys.exit(f"check-tables: no pages under {book} (run `mdbook build book` first)")
    chrome = browser()
    bad = 0
    with tempfile.TemporaryDirectory() as scratch:
        for page in pages:
            for problem in check(page, chrome, width, scratch):
                print(f"{os.path.basename(page)}: {problem}")
                bad += 1
    print(f"check-tables: {len(pages)} pages at {width} px, {bad} table(s) too wide")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
