#!/usr/bin/python3
"""bench/html_load_bench.py: how long a `heapsight html` page takes to open
in headless Chromium (Debian's chromium, chromium-driver, python3-selenium).

  bench/html_load_bench.py PAGE.html [--runs 3] [--screenshot out.png]

Per run, a fresh browser opens the page from file:// and the script reports
the navigation's load event (responseEnd..loadEventEnd and from navigation
start) and when the first process's flame graph was drawn (its frames are in
the DOM), both from the page's own clock (performance.now()), and the
page's size. A timing tool, not a test: numbers depend on the machine's load.
"""
import argparse
import os
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('page')
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--screenshot')
    args = ap.parse_args()
    url = 'file://' + os.path.abspath(args.page)
    print('page: %s, %s bytes' % (args.page, format(os.path.getsize(args.page), ',')))
    for run in range(args.runs):
        opts = Options()
        for a in ('--headless', '--no-sandbox', '--disable-gpu', '--window-size=1280,1000'):
            opts.add_argument(a)
        driver = webdriver.Chrome(service=Service('/usr/bin/chromedriver'), options=opts)
        try:
            driver.get(url)  # returns after the load event
            deadline = time.time() + 60
            drawn = None
            while time.time() < deadline:
                drawn = driver.execute_script(
                    "return document.querySelector('div.flame-graph div.fr') ? "
                    "performance.now() : null")
                if drawn:
                    break
                time.sleep(0.02)
            nav = driver.execute_script(
                "const n = performance.getEntriesByType('navigation')[0];"
                "return [n.responseEnd, n.domContentLoadedEventEnd, n.loadEventEnd];")
            frames = driver.execute_script(
                "return document.querySelectorAll('div.flame-graph div.fr').length")
            print('run %d: load event %.0f ms (DOM ready %.0f ms), flame graph drawn by %.0f ms '
                  '(%d frames drawn; polled every 20 ms)' % (run + 1, nav[2], nav[1], drawn or -1,
                                                            frames))
            if args.screenshot and run == 0:
                driver.save_screenshot(args.screenshot)
        finally:
            driver.quit()


if __name__ == '__main__':
    main()
