#!/usr/bin/python3
"""tests/browser/html_page_test.py: `heapsight html` opened in headless Chromium.

Records tests/browser/two_phase (10,000,000 bytes for ~300 ms, then
30,000,000 bytes for ~300 ms) under `heapsight record`, writes its page and
reads back what the browser drew:
  - the heap line's highest point, converted to bytes and time through the
    drawn axis ticks, is the peak `heapsight report` prints, at its time;
  - the line is steps (only horizontal and vertical segments) and the
    10 MB phase is one flat segment of about 300 ms;
  - both axes have ticks with units;
  - the RSS is hidden until its checkbox is ticked, and labelled as
    including heapsight's own memory;
  - markers are drawn with their names, the peak is marked;
  - the chart's selection: clicking a moment in each phase makes the views
    show the bytes live then (10,000,000 and 30,000,000: exact, the phases'
    middles being many 4-8 ms buckets away from any change), dragging over
    phase 2 shows its 20,000,000 bytes allocated (all Holder<script>'s) and
    over the whole chart report's bytes_allocated; Enter and the arrow keys
    on the focused chart pick and move the moment, Escape and the button
    clear it; stacked by call site, the bottom band is Holder<script>
    (20,000,000 bytes), then Holder<Amp&>, named in the legend
    (html_page_selection.png);
  - hostile strings (the command line, marker names and the source file
    name hold <script>, <img onerror>, quotes and &) show as text and run
    nothing;
  - on a fork/exec family (`two_phase family`: a fork child that execs
    `two_phase small`), the process selector shows one process at a time and
    the image that ended in exec says its heap was discarded, not that it
    was not freed at exit.
  - on tests/cli/temporaries_program (--temporaries), the "most temporary
    allocations" table has the program's known counts per site (temp_alloc
    100, make_inner 50, new_array 30, grow_realloc 20); the metric switch
    shows one flame graph at a time; searching the flame graph gives the
    exact matched total (100 temporary allocations of temp_alloc, 4,000
    bytes allocated by temp_alloc and make_inner);
  - on a sampled trace, the chart's maximum is `report`'s estimated peak,
    the chart and the site tables say "estimate", the sites live at the
    peak add up to it, and temporaries are "not known".
  - on the leak corpus (tests/corpus: indirect_leak, interior_ptr,
    mismatch), the leaks section's classes, their LSan-style stacks and the
    free errors with both stacks are the expect files' numbers.
Screenshots go to --artifacts (html_page_two_phase.png, html_page_family.png,
html_page_temporaries.png, html_page_sampled.png, html_page_leaks.png).
Exit 77 (skipped) only when chromium or chromedriver is missing.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

HOSTILE_ARG = '<script>window.heapsightPwned=3</script>"&\'<img src=x onerror=heapsightPwned=4>'


def find_browser():
    chromium = shutil.which('chromium') or shutil.which('chromium-browser')
    driver = shutil.which('chromedriver') or (
        '/usr/bin/chromedriver' if os.path.exists('/usr/bin/chromedriver') else None)
    return chromium, driver


def run(argv, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise AssertionError('%s exited %d:\n%s%s' % (argv, r.returncode, r.stdout, r.stderr))
    return r.stdout


def record(heapsight, program, out_dir, args):
    os.makedirs(out_dir)
    run([heapsight, 'record', '-q', '-o', out_dir, '--', program] + args)
    return sorted(os.path.join(out_dir, f) for f in os.listdir(out_dir) if f.endswith('.hst'))


def report_peak(heapsight, trace):
    """(bytes, microseconds) of the peak `heapsight report` prints: its text's
    "peak heap:" line, with the exact time from its JSON (the text rounds the
    time, e.g. 383,999 us to "384 ms", and the page's mark holds it exact)."""
    text = run([heapsight, 'report', trace])
    m = re.search(r'^peak heap: ([\d,]+) bytes.* at ([\d.]+) (us|ms|s)$', text, re.M)
    assert m, 'no peak line in the report:\n' + text
    totals = report_json(heapsight, [trace])[0]['totals']
    scale = {'us': 1, 'ms': 1000, 's': 1000000}[m.group(3)]
    assert int(m.group(1).replace(',', '')) == totals['peak_bytes'], (text, totals)
    assert abs(float(m.group(2)) * scale - totals['peak_time_us']) <= scale, (text, totals)
    return totals['peak_bytes'], totals['peak_time_us']


def report_json(heapsight, traces):
    """`heapsight report --format=json` of the traces: its processes."""
    import json
    return json.loads(run([heapsight, 'report', '--format=json'] + list(traces)))['processes']


# Each metric of the page's switch and the `report --format=json` total it
# must add up to.
METRIC_TOTALS = {'alloc_bytes': 'bytes_allocated', 'alloc_count': 'allocations',
                 'peak_bytes': 'peak_bytes', 'peak_count': 'peak_blocks',
                 'not_freed_bytes': 'not_freed_bytes', 'not_freed_count': 'not_freed_blocks',
                 'temporary_count': 'temporary'}


def check_metric_totals(driver, heapsight, trace, section, failures):
    """Switches the section's view through every metric: the flame graph's
    root (what its detail line says when focused) is report's total."""
    totals = report_json(heapsight, [trace])[0]['totals']
    st = flame_state(driver, section)
    for metric in st['options']:
        if metric not in METRIC_TOTALS or METRIC_TOTALS[metric] not in totals:
            continue
        set_metric(driver, metric)
        st = flame_state(driver, section)
        want = totals[METRIC_TOTALS[metric]]
        check(st['metric'] == metric and st['total'] == str(want) and
              (want == 0 or st['rootDetail'].startswith('all\n%s ' % format(want, ','))),
              'process %s, %s: the flame graph\'s root is report --format=json\'s %s %d: %s'
              % (section, metric, METRIC_TOTALS[metric], want,
                 (st['total'], st['rootDetail'])), failures)
    set_metric(driver, 'alloc_bytes')


def parse_steps(d):
    """The heap path's commands: [('M', x, y), ('H', x), ('V', y)]."""
    tokens = re.findall(r'([A-Za-z])([^A-Za-z]*)', d)
    out = []
    for cmd, args in tokens:
        nums = [float(v) for v in re.findall(r'-?[\d.]+', args)]
        if cmd == 'L':  # a ramp, or a step drawn with L: as H and V
            out.append(('L',) + tuple(nums))
            continue
        out.append((cmd,) + tuple(nums))
    return out


def points(steps):
    """The path's vertices as (x, y)."""
    pts = []
    x = y = None
    for s in steps:
        if s[0] in 'ML':
            x, y = s[1], s[2]
        elif s[0] == 'H':
            x = s[1]
        elif s[0] == 'V':
            y = s[1]
        pts.append((x, y))
    return pts


def axis_map(ticks):
    """A linear map from a pixel position to a value, fitted on the drawn ticks
    [(value, pos)], and the value of one pixel."""
    (v0, p0), (v1, p1) = ticks[0], ticks[-1]
    per_px = (v1 - v0) / (p1 - p0)
    return (lambda pos: v0 + (pos - p0) * per_px), abs(per_px)


def check(cond, what, failures):
    if not cond:
        failures.append(what)
        print('FAIL: ' + what, flush=True)
    else:
        print('ok: ' + what, flush=True)


def chart_of(driver, section):
    """What the browser drew in one process section's chart."""
    return driver.execute_script(r'''
      const s = arguments[0];
      // (An older page drew a polyline in a plain <svg>: read that too, so
      // the checks below say what is wrong with it.)
      const svg = s.querySelector('svg.timeline') || s.querySelector('svg');
      if (!svg) return null;
      const poly = svg.querySelector('polyline:last-of-type');
      const ticks = (sel) => Array.from(svg.querySelectorAll(sel + ' > g.tick')).map(
          g => [parseFloat(g.dataset.value), parseFloat(g.dataset.pos),
                g.textContent.trim(), g.getBoundingClientRect().width > 0]);
      const line = svg.querySelector('path.heap-line');
      const peak = svg.querySelector('g.peak');
      const rss = svg.querySelector('g.rss');
      return {
        d: line ? line.getAttribute('d') :
           poly ? 'M' + poly.getAttribute('points').trim().split(/\s+/).join('L') : '',
        lineVisible: line ? line.getBoundingClientRect().height > 0 : false,
        yTicks: ticks('g.heap-axis'),
        xTicks: ticks('g.x-axis'),
        peak: peak ? [parseFloat(peak.dataset.bytes), parseFloat(peak.dataset.timeUs),
                      peak.textContent] : null,
        markers: Array.from(svg.querySelectorAll('g.marker')).map(
            g => [parseFloat(g.dataset.timeUs), g.querySelector('text').textContent]),
        rssShown: rss ? getComputedStyle(rss).display !== 'none' : null,
        rssLabel: s.querySelector('label[for^="rss-"]') ?
            s.querySelector('label[for^="rss-"]').textContent : '',
      };''', section)


def check_two_phase(driver, heapsight, trace, page, shot, failures):
    peak_bytes, peak_us = report_peak(heapsight, trace)
    print('report: peak %d bytes at %d us' % (peak_bytes, peak_us))
    driver.get('file://' + page)
    found = driver.find_elements('css selector', 'section.process')
    section = found[0] if found else driver.find_element('css selector', 'body')
    c = chart_of(driver, section)
    check(c is not None and c['d'], 'the page has a heap chart (svg path.heap-line)', failures)
    if not c or not c['d']:
        return
    steps = parse_steps(c['d'])
    check(all(s[0] in 'MHV' for s in steps),
          'the heap line is steps: only M, H and V commands (no ramps)', failures)
    check(len(c['yTicks']) >= 3 and all(re.search(r'\d (B|KiB|MiB|GiB)$', t[2])
                                        for t in c['yTicks']),
          'the heap axis has >= 3 ticks with byte units: %s' % [t[2] for t in c['yTicks']],
          failures)
    check(len(c['xTicks']) >= 3 and all(re.search(r'\d (us|ms|s)$', t[2]) for t in c['xTicks']),
          'the time axis has >= 3 ticks with time units: %s' % [t[2] for t in c['xTicks']],
          failures)
    check(all(t[3] for t in c['yTicks'] + c['xTicks']), 'every tick is rendered', failures)
    if len(c['yTicks']) < 2 or len(c['xTicks']) < 2:
        return
    to_bytes, bytes_per_px = axis_map([(t[0], t[1]) for t in c['yTicks']])
    to_us, us_per_px = axis_map([(t[0], t[1]) for t in c['xTicks']])
    pts = points(steps)
    top_y = min(p[1] for p in pts)
    top_x = min(p[0] for p in pts if p[1] == top_y)  # where the line first reaches it
    drawn_bytes, drawn_us = to_bytes(top_y), to_us(top_x)
    print('drawn: maximum %.0f bytes at %.0f us (1 px = %.0f bytes, %.0f us)' %
          (drawn_bytes, drawn_us, bytes_per_px, us_per_px))
    check(abs(drawn_bytes - peak_bytes) <= bytes_per_px,
          'the drawn maximum is the reported peak (%.0f vs %d bytes, within 1 px)' %
          (drawn_bytes, peak_bytes), failures)
    check(abs(drawn_us - peak_us) <= us_per_px,
          'the drawn maximum sits at the reported peak time (%.0f vs %d us, within 1 px)' %
          (drawn_us, peak_us), failures)
    check(c['peak'] is not None and c['peak'][0] == peak_bytes and c['peak'][1] == peak_us,
          'the peak mark holds the report\'s numbers: %s' % (c['peak'],), failures)
    # The 10 MB phase: one flat segment at 10,000,000 bytes of about 300 ms.
    flats = []
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if y0 == y1 and x1 > x0:
            flats.append((to_bytes(y0), to_us(x1) - to_us(x0)))
    # (The frees at the end may be a clock tick apart: a short flat at 10 MB.)
    phase1 = [f[1] for f in flats if abs(f[0] - 10_000_000) <= bytes_per_px]
    check(phase1 and 250_000 <= max(phase1) <= 5_000_000,
          'the 10 MB phase is a flat segment of >= 250 ms (it sleeps 300 ms): %s' % phase1, failures)
    phase2 = [f[1] for f in flats if abs(f[0] - 30_000_000) <= bytes_per_px]
    check(len(phase2) == 1 and 250_000 <= phase2[0] <= 5_000_000,
          'the 30 MB phase is one flat segment of >= 250 ms (it sleeps 300 ms): %s' % phase2, failures)
    between = [f for f in flats if 10_000_000 + bytes_per_px < f[0] < 30_000_000 - bytes_per_px]
    check(not between, 'no level between the two phases is drawn: %s' % between, failures)
    names = [m[1] for m in c['markers']]
    check(len(names) == 2 and names[0].startswith('phase 1 <b>10 MB</b> & "quoted"') and
          names[1].startswith('phase 2 <script>'),
          'both markers are drawn, their names as text: %s' % names, failures)
    check(c['rssShown'] is False and "includes heapsight's own memory" in c['rssLabel'],
          'RSS is hidden behind a checkbox labelled as including heapsight\'s memory', failures)
    driver.find_element('css selector', 'input.rss-toggle').click()
    c2 = chart_of(driver, section)
    check(c2['rssShown'] is True, 'ticking the checkbox shows the RSS', failures)
    check(c2['lineVisible'], 'the heap line is visible', failures)
    # The longest horizontal segment at 10 MB, in pixels.
    tens = [(x1 - x0, (x0 + x1) / 2) for (x0, y0), (x1, y1) in zip(pts, pts[1:])
            if y0 == y1 and abs(to_bytes(y0) - 10_000_000) <= bytes_per_px]
    mid_10mb = max(tens)[1] if tens else None
    check_hover(driver, section, mid_10mb, top_x, to_us, us_per_px, failures)
    check_hostile(driver, failures)
    # The flame graph, drawn by the page's script (under its
    # Content-Security-Policy) from the embedded table.
    st = flame_state(driver, '0')
    check(st['frames'] >= 3 and st['height'] > 40,
          'the flame graph is drawn: %s' % (st,), failures)
    check_views(driver, heapsight, trace, failures)
    driver.save_screenshot(shot)
    check_selection(driver, heapsight, trace, section,
                    shot.replace('two_phase', 'selection'), failures)


def selection_state(driver, section):
    """The chart's selection status and the views' metric and root total."""
    import time
    time.sleep(0.05)
    st = flame_state(driver, '0')
    status = driver.execute_script(r'''
      const s = arguments[0].querySelector('span.chart-selection');
      return s ? [s.textContent, s.dataset.momentUs || null, s.dataset.rangeA || null,
                  s.dataset.rangeB || null, s.dataset.bucketUs || null] : null;''', section)
    return st, status


def check_selection(driver, heapsight, trace, section, shot, failures):
    """A moment picked on the chart (click, arrow keys), a range (drag), the
    views' "live at the selected moment" and "allocated in the selected
    range" metrics, and the chart stacked by call site, on two_phase
    (10,000,000 bytes live from marker 1, 30,000,000 from marker 2 for
    ~300 ms each; phase 2 allocates 20,000,000 bytes in
    Holder<script>::Hold)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    totals = report_json(heapsight, [trace])[0]['totals']
    c = chart_of(driver, section)
    left, right, end = driver.execute_script(
        "const s = arguments[0].querySelector('svg.timeline').dataset;"
        "return [+s.plotLeft, +s.plotRight, +s.endUs];", section)
    area = section.find_element('css selector', 'rect.hover-area')
    box = [float(area.get_attribute(a)) for a in ('x', 'width')]
    center = box[0] + box[1] / 2

    def offset(us):  # from the hover area's centre, in CSS pixels
        return int(round(left + (right - left) * us / end - center))

    check(len(c['markers']) == 2, 'two_phase has its two markers', failures)
    if len(c['markers']) != 2:
        return
    m1, m2 = c['markers'][0][0], c['markers'][1][0]
    # Phase 1's 10,000,000 bytes are live from their allocation, which a
    # loaded machine recorded up to 420 ms after marker 1 (the hook's first
    # unwind through the program): its time, from `dump`.
    t1 = m1
    for line in run([heapsight, 'dump', trace]).splitlines():
        f = line.split()
        if len(f) > 2 and f[1] == 'alloc' and 'size=10000000' in f:
            t1 = float(f[0])
            break
    hold = 'phases::Holder<script>::Hold(unsigned long)'
    amp = 'phases::Holder<phases::Amp&>::Hold(unsigned long)'
    # Phase 2's 30,000,000 bytes are live from its 20 MB allocation (the
    # peak's time: marker 2 plus however long malloc took, which under load
    # was more than 150 ms) until at least 300 ms later.
    p2 = c['peak'][1] if c['peak'] else m2
    check(m2 - t1 >= 200_000, 'phase 1 holds its block >= 200 ms before marker 2 (%d us)' %
          (m2 - t1), failures)
    for name, at, want in (('phase 1', (t1 + m2) / 2, 10_000_000),
                           ('phase 2', p2 + 150_000, 30_000_000)):
        ActionChains(driver).move_to_element_with_offset(area, offset(at), 0).click().perform()
        st, status = selection_state(driver, section)
        bucket = float(status[4]) if status and status[4] else -1
        # The moment's value is each site's live bytes after the last change
        # in the bucket holding it: exact unless the heap changed within
        # that bucket (tolerance: the heap's range over one bucket, printed).
        # The phases' middles are >= 100 ms from any change, many buckets
        # away, so the numbers are exact.
        print('%s: moment %s us, bucket %s us' % (name, status and status[1], bucket))
        check(status is not None and status[1] is not None and
              abs(float(status[1]) - at) <= (end / (right - left)) * 1.5,
              'clicking the chart in %s picks that moment: %s' % (name, status), failures)
        check(st['metric'] == 'live_moment' and st['total'] == str(want),
              'the views show the bytes live at the moment in %s: root %s (want %d, '
              'metric %s; bucket %.0f us, >= 100 ms from a change)' %
              (name, st['total'], want, st['metric'], bucket), failures)
    b = {x['label']: x for x in boxes(driver)}
    check(hold in b and amp in b and abs(b[hold]['width'] - 2 * b[amp]['width']) <= 2,
          'at the phase 2 moment Holder<script> is twice Holder<Amp&> in the flame graph: %s' %
          ({k: v['width'] for k, v in b.items()},), failures)
    # Drag over phase 2: from just before its marker to 250 ms into it, or
    # to 100 ms past its 20 MB allocation (the peak) if that came later (a
    # loaded machine once put it 250+ ms after the marker).
    until = max(m2 + 250_000, p2 + 100_000)
    ActionChains(driver).move_to_element_with_offset(area, offset(m2) - 4, 0).click_and_hold() \
        .move_by_offset(offset(until) - offset(m2) + 4, 0).release().perform()
    st, status = selection_state(driver, section)
    check(status is not None and status[2] is not None and
          float(status[2]) < m2 < float(status[3]),
          'dragging selects a range around phase 2: %s' % (status,), failures)
    check(st['metric'] == 'alloc_range' and st['total'] == '20000000',
          'the views show the bytes allocated in the range: %s (want 20000000, metric %s)' %
          (st['total'], st['metric']), failures)
    b = {x['label']: x for x in boxes(driver)}
    check(hold in b and amp not in b,
          'phase 2\'s allocations are Holder<script>\'s only: %s' % sorted(b), failures)
    rows = tree_rows(driver)
    check(rows and rows[0][2].startswith('20,000,000 '),
          'the top-down tree follows the range: %s' % (rows[:1],), failures)
    # The whole chart: every byte allocated (report --format=json).
    ActionChains(driver).move_to_element_with_offset(area, int(-box[1] / 2) + 1, 0) \
        .click_and_hold().move_by_offset(int(box[1]) - 2, 0).release().perform()
    st, status = selection_state(driver, section)
    check(st['total'] == str(totals['bytes_allocated']),
          'a range over the whole chart allocated report\'s bytes_allocated: %s vs %d' %
          (st['total'], totals['bytes_allocated']), failures)
    # The keyboard: focus the chart, Enter picks the cursor's moment, the
    # arrow keys then move it.
    svg = section.find_element('css selector', 'svg.timeline')
    driver.execute_script('arguments[0].focus()', svg)
    ActionChains(driver).send_keys(Keys.ENTER).perform()
    _, s1 = selection_state(driver, section)
    ActionChains(driver).key_down(Keys.SHIFT).send_keys(Keys.ARROW_LEFT).key_up(Keys.SHIFT) \
        .perform()
    st, s2 = selection_state(driver, section)
    us_per_px = end / (right - left)
    check(s1 and s2 and s1[1] is not None and s2[1] is not None and
          9 * us_per_px <= float(s1[1]) - float(s2[1]) <= 11 * us_per_px and
          st['metric'] == 'live_moment',
          'the arrow keys move the moment on the focused chart: %s, then %s' % (s1, s2), failures)
    ActionChains(driver).send_keys(Keys.ESCAPE).perform()
    _, s3 = selection_state(driver, section)
    check(s3 and s3[1] is None and s3[2] is None, 'Escape clears the selection: %s' % (s3,),
          failures)
    # Stacked by call site: the bottom band is the site with the most live
    # bytes (Holder<script>, 20,000,000), then Holder<Amp&> (10,000,000).
    driver.execute_script("arguments[0].querySelector('input.chart-stacked').click()", section)
    bands = driver.execute_script(r'''
      const s = arguments[0];
      return [Array.from(s.querySelectorAll('svg.timeline path.site-band')).map(
                 p => [p.dataset.name, +p.dataset.max, p.getBoundingClientRect().height > 0]),
              Array.from(s.querySelectorAll('div.site-legend span.legend-item')).map(
                 e => e.textContent),
              !s.querySelector('div.site-legend').hidden,
              !!s.querySelector('svg.timeline path.heap-line')];''', section)
    print('bands: %s' % (bands,))
    check(len(bands[0]) >= 2 and bands[0][0][:2] == [hold, 20_000_000] and
          bands[0][1][:2] == [amp, 10_000_000] and all(x[2] for x in bands[0][:2]),
          'the stacked bands: Holder<script> (20,000,000 bytes) at the bottom, then '
          'Holder<Amp&> (10,000,000)', failures)
    check(bands[2] and hold in bands[1] and bands[3],
          'the legend names the bands (as text) and the exact step line stays drawn', failures)
    ActionChains(driver).move_to_element_with_offset(area, offset(m2) - 4, 0).click_and_hold() \
        .move_by_offset(offset(m2 + 250_000) - offset(m2) + 4, 0).release().perform()
    selection_state(driver, section)
    driver.execute_script("arguments[0].scrollIntoView()", section)
    driver.save_screenshot(shot)
    section.find_element('css selector', 'button.chart-clear').click()
    _, s4 = selection_state(driver, section)
    check(s4 and s4[1] is None and s4[2] is None, 'the button clears the selection', failures)
    driver.execute_script("arguments[0].querySelector('input.chart-stacked').click()", section)
    set_metric(driver, 'alloc_bytes')

def boxes(driver, section='0'):
    """The flame graph's drawn frames: [{label, left, top, width}]."""
    return driver.execute_script(r'''
      const s = document.querySelector('section.process[data-proc="' + arguments[0] + '"]');
      const g = s.querySelector('div.flame-graph');
      return Array.from(g.querySelectorAll('div.fr')).map(d => ({
          id: d.dataset.id, label: d.textContent, left: d.offsetLeft, top: d.offsetTop,
          width: d.offsetWidth, lib: d.classList.contains('lib'),
          match: d.classList.contains('match')}));''', section)


def tree_rows(driver, section='0'):
    """The tree table's rows: [[function, location, inclusive, self]]."""
    return driver.execute_script(r'''
      const s = document.querySelector('section.process[data-proc="' + arguments[0] + '"]');
      return Array.from(s.querySelectorAll('div.tree-box tr[data-id]')).map(
          tr => Array.from(tr.cells).map(c => c.textContent));''', section)


def click_box(driver, label, section='0'):
    driver.execute_script(r'''
      const s = document.querySelector('section.process[data-proc="' + arguments[0] + '"]');
      const d = Array.from(s.querySelectorAll('div.flame-graph div.fr')).filter(
          d => d.textContent === arguments[1])[0];
      d.dispatchEvent(new MouseEvent('click', {bubbles: true}));''', section, label)


def check_views(driver, heapsight, trace, failures):
    """The flame graph's zoom, icicle, keyboard and hostile-name search, and
    the trees, on two_phase (10,000,000 bytes in Holder<Amp&>, 20,000,000 in
    Holder<script>): numbers against `report --format=json`."""
    from selenium.webdriver.common.keys import Keys
    totals = report_json(heapsight, [trace])[0]['totals']
    hold = 'phases::Holder<script>::Hold(unsigned long)'
    amp = 'phases::Holder<phases::Amp&>::Hold(unsigned long)'
    b = {x['label']: x for x in boxes(driver)}
    check(hold in b and amp in b and b['all']['top'] > b[hold]['top'],
          'flame graph: the root at the bottom, the hostile-named frames drawn as text: %s'
          % sorted(b), failures)
    if hold in b and amp in b:
        check(abs(b[hold]['width'] - 2 * b[amp]['width']) <= 2,
              'flame graph: Holder<script> (20 MB) is twice as wide as Holder<Amp&> (10 MB): '
              '%d vs %d px' % (b[hold]['width'], b[amp]['width']), failures)
    # Search with a hostile regular expression: the frame named <script>.
    st = search_flame(driver, '<script>')
    check(st['matchedValue'] == '20000000' and st['matches'] == [hold] and
          st['matched'] == 'Matched: 66.67% (20,000,000 bytes)',
          'searching "<script>" highlights Holder<script> and totals 20,000,000 bytes: %s'
          % ((st['matched'], st['matches']),), failures)
    search_flame(driver, '')
    # Click to zoom: the clicked frame takes the whole width, its callers
    # stay as full-width bars; clicking the root zooms out.
    full = b['all']['width'] if 'all' in b else 0
    click_box(driver, hold)
    z = {x['label']: x for x in boxes(driver)}
    check(hold in z and abs(z[hold]['width'] - full) <= 1 and amp not in z,
          'clicking Holder<script> zooms into it (%s px of %s), its sibling is gone'
          % (z.get(hold, {}).get('width'), full), failures)
    click_box(driver, 'all')
    check(amp in {x['label'] for x in boxes(driver)}, 'clicking the root zooms out', failures)
    # Hover: the exact numbers.
    detail = driver.execute_script(r'''
      const d = Array.from(document.querySelectorAll('div.flame-graph div.fr')).filter(
          d => d.textContent === arguments[0])[0];
      d.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
      return document.querySelector('div.flame-detail').textContent;''', hold)
    check(detail.startswith(hold + ' (two_phase<script>heapsightPwned=1<img src=x '
                            'onerror=heapsightPwned=1>"\'&.cc:') and
          '\n20,000,000 bytes, 66.67% of all; self 20,000,000 bytes' in detail,
          'hovering Holder<script> shows its place and exact bytes: %r' % detail, failures)
    # Keyboard: from the root, Up goes to its widest callee.
    graph = driver.find_element('css selector', 'section.process[data-proc="0"] div.flame-graph')
    graph.click()
    graph.send_keys(Keys.ESCAPE)
    graph.send_keys(Keys.ARROW_UP)
    detail = driver.find_element('css selector', 'div.flame-detail').text
    check(detail.startswith('main ') and '30,000,000 bytes, 100.00% of all' in detail,
          'the arrow keys move between frames: %r' % detail, failures)
    # Icicle: the root on top.
    driver.execute_script("document.querySelector('input.flame-icicle').click()")
    i = {x['label']: x for x in boxes(driver)}
    check(i.get('all', {}).get('top') == 0 and i[hold]['top'] > 0,
          'the icicle has the root on top: %s' % {k: v['top'] for k, v in i.items()}, failures)
    driver.execute_script("document.querySelector('input.flame-icicle').click()")
    # The top-down tree: expand main, its inclusive bytes are report's.
    rows = tree_rows(driver)
    check(len(rows) == 1 and rows[0][0].endswith('main') and
          rows[0][2].startswith('%s ' % format(totals['bytes_allocated'], ',')),
          'the top-down tree starts at main with report\'s bytes allocated: %s' % rows, failures)
    driver.execute_script("document.querySelector('div.tree-box tr[data-id]').click()")
    rows = tree_rows(driver)
    check(len(rows) == 2 and rows[1][0].endswith('phases::TwoPhases()'),
          'clicking main expands it: %s' % rows, failures)
    rel = driver.execute_script(r'''
      const r = document.querySelector('div.relations');
      return {head: r.querySelector('p').textContent,
              callees: Array.from(r.querySelectorAll('div.callees td')).map(c => c.textContent),
              callers: Array.from(r.querySelectorAll('div.callers td')).map(c => c.textContent)};
    ''')
    check(rel['head'] == 'main: 30,000,000 bytes inclusive, 0 self' and
          rel['callees'] == ['phases::TwoPhases()', '30,000,000'] and
          rel['callers'][0] == '(root: no caller)',
          'the selected function\'s callers and callees: %s' % rel, failures)
    # Keyboard in the tree: down, then right expands TwoPhases.
    box = driver.find_element('css selector', 'section.process[data-proc="0"] div.tree-box')
    box.send_keys(Keys.ARROW_DOWN)
    box.send_keys(Keys.ARROW_RIGHT)
    rows = tree_rows(driver)
    check([r[0].lstrip('\u25b8\u25be') for r in rows] ==
          ['main', 'phases::TwoPhases()', hold, amp] and
          rows[2][2].startswith('20,000,000 ') and rows[3][3] == '10,000,000',
          'arrows and Right expand the tree; callees sorted by inclusive bytes: %s' % rows,
          failures)
    # Sorting by name puts Holder<Amp&> first.
    driver.execute_script("document.querySelector('div.tree-box th[data-sort=\"name\"]').click()")
    rows = tree_rows(driver)
    check(len(rows) == 4 and rows[2][0].endswith(amp),
          'sorting by name: %s' % [r[0] for r in rows], failures)
    # Bottom-up: the allocating functions first.
    driver.execute_script("document.querySelector('input.tree-mode[value=\"bottom\"]').click()")
    rows = tree_rows(driver)
    check([r[0].lstrip('\u25b8\u25be') for r in rows] == [amp, hold] and
          rows[1][3] == '20,000,000',
          'the bottom-up tree lists the allocating functions with their own bytes: %s' % rows,
          failures)
    driver.execute_script("document.querySelector('input.tree-mode[value=\"top\"]').click()")


def check_hover(driver, section, mid_10mb, top_x, to_us, us_per_px, failures):
    """The cursor reads the exact heap where the mouse is, and moves with the
    arrow keys."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    area = section.find_element('css selector', 'rect.hover-area')
    box = [float(area.get_attribute(a)) for a in ('x', 'width')]
    center = box[0] + box[1] / 2  # (SVG units are CSS pixels: viewBox = size)

    def read_at(x):
        ActionChains(driver).move_to_element_with_offset(
            area, int(round(x - center)), 0).perform()
        return driver.execute_script(
            "const c = arguments[0].querySelector('g.cursor');"
            "return [c.getAttribute('visibility'), c.querySelector('text').textContent];",
            section)

    # 3 px right of the step up to the peak: the 30 MB plateau.
    vis, text = read_at(top_x + 3)
    m = re.match(r'([\d.]+) (us|ms|s): (.*)$', text or '')
    check(vis == 'visible' and m and m.group(3) == '30,000,000 bytes',
          'hovering the 30 MB phase reads "30,000,000 bytes": %r' % text, failures)
    if m:
        us = float(m.group(1)) * {'us': 1, 'ms': 1000, 's': 1000000}[m.group(2)]
        check(abs(us - to_us(round(top_x + 3))) <= 2 * us_per_px,
              'and the time under the mouse: %r' % text, failures)
    # The middle of the 10 MB phase.
    if mid_10mb is not None:
        vis, text = read_at(mid_10mb)
        check(text and text.endswith(': 10,000,000 bytes'),
              'hovering the 10 MB phase reads "10,000,000 bytes": %r' % text, failures)
    ActionChains(driver).move_by_offset(0, 400).perform()  # off the chart
    svg = section.find_element('css selector', 'svg.timeline')
    driver.execute_script('arguments[0].focus()', svg)
    ActionChains(driver).send_keys(Keys.ARROW_RIGHT).perform()
    vis, text = driver.execute_script(
        "const c = arguments[0].querySelector('g.cursor');"
        "return [c.getAttribute('visibility'), c.querySelector('text').textContent];", section)
    before = text
    ActionChains(driver).key_down(Keys.SHIFT).send_keys(Keys.ARROW_RIGHT).key_up(
        Keys.SHIFT).perform()
    after = driver.execute_script(
        "return arguments[0].querySelector('g.cursor text').textContent;", section)
    def us(t):  # the cursor's time, in us
        m = re.match(r'([\d.]+) (us|ms|s):', t or '')
        return float(m.group(1)) * {'us': 1, 'ms': 1000, 's': 1000000}[m.group(2)] if m else -1
    check(vis == 'visible' and us(after) - us(before) > 5 * us_per_px,
          'the arrow keys move the cursor on the focused chart: %r, then %r' % (before, after),
          failures)


def check_hostile(driver, failures):
    r = driver.execute_script(r'''
      return {
        pwned: typeof window.heapsightPwned,
        scripts: document.querySelectorAll('script').length,
        imgs: document.querySelectorAll('img').length,
        h1: document.querySelector('h1').textContent,
        body: document.body.textContent,
      };''')
    check(r['pwned'] == 'undefined', 'no script from the trace ran', failures)
    check(r['imgs'] == 0, 'no element from the trace was created (no <img>)', failures)
    check(HOSTILE_ARG in r['h1'], 'the hostile argument shows as text in the title', failures)
    check('<script>heapsightPwned=1<img src=x onerror=heapsightPwned=1>"\'&.cc:' in r['body'],
          'the hostile source file name shows as text in the stacks', failures)
    check('phases::Holder<phases::Amp&>::Hold' in r['body'],
          'C++ names with < > & show as text', failures)


def check_family(driver, heapsight, traces, page, shot, failures):
    driver.get('file://' + page)
    options = driver.execute_script(
        "return Array.from(document.querySelectorAll('#process-select option')).map(o => o.value)")
    check(len(options) == 3, 'the selector lists the three processes: %s' % options, failures)
    check(len(driver.find_elements('css selector', 'ul.tree li ul li')) >= 1,
          'the process tree nests children under their parent', failures)
    seen = set()
    for value in options:
        driver.execute_script(
            "const s = document.getElementById('process-select'); s.value = arguments[0];"
            "s.dispatchEvent(new Event('change'));", value)
        visible = driver.execute_script(r'''
          return Array.from(document.querySelectorAll('section.process'))
              .filter(s => s.getBoundingClientRect().height > 0)
              .map(s => [s.dataset.proc, s.dataset.pid, s.textContent]);''')
        check(len(visible) == 1 and visible[0][0] == value,
              'selecting process %s shows only its section' % value, failures)
        if len(visible) != 1:
            continue
        seen.add(visible[0][0])
        text = visible[0][2]
        st = flame_state(driver, value)
        check(st['frames'] >= 2 and st['height'] > 30,
              'process %s: its flame graph is drawn once shown: %s' % (value, st), failures)
        m = re.search(r'trace (\S+\.hst), parent', text)
        check(m is not None, 'process %s names its trace' % value, failures)
        if m:
            check_metric_totals(driver, heapsight, m.group(1), value, failures)
        if 'ended by exec of' in text:
            check('heap discarded by exec' in text and 'not freed at exit' not in text,
                  'the image that ended in exec says its heap was discarded by exec, '
                  'never "not freed at exit"', failures)
            seen.add('exec')
        if 'small' in text and 'ended by exec of' not in text:
            c = chart_of(driver, driver.find_element('css selector',
                                                     'section.process[data-proc="%s"]' % value))
            check(c is not None and c['peak'] is not None and c['peak'][0] == 1_000_000,
                  'the exec\'d image\'s own chart peaks at 1,000,000 bytes', failures)
            driver.save_screenshot(shot)
    check(len(seen) == 4, 'every process was shown once, one of them ended in exec', failures)
    # Clicking a tree link selects too.
    link = driver.find_elements('css selector', 'a.proc-link')[-1]
    target = link.get_attribute('data-proc')
    link.click()
    value = driver.execute_script("return document.getElementById('process-select').value")
    check(value == target, 'clicking a process in the tree selects it', failures)
    # Family totals never exceed the sum of the processes.
    family = driver.execute_script(r'''
      return Array.from(document.querySelectorAll('table.family tr')).slice(1).map(
          tr => Array.from(tr.cells).map(c => c.textContent));''')
    num = lambda s: int(re.sub(r'[^\d]', '', s) or 0)
    rows, total = family[:-1], family[-1]
    for col in (1, 2):
        check(num(total[col]) == sum(num(r[col]) for r in rows),
              'family column %d is the sum of its processes' % col, failures)
    check(num(total[3]) == max(num(r[3]) for r in rows),
          'the family peak is the largest single process peak', failures)
    check_hostile(driver, failures)


TEMPORARIES = {'temp_alloc': 100, 'make_inner': 50, 'new_array': 30, 'grow_realloc': 20}


def innermost(cell_text):
    """'(anonymous namespace)::temp_alloc() (file.cc:27) <- ...' -> 'temp_alloc'."""
    m = re.match(r'(?:\(anonymous namespace\)::)?([\w:]+)\(', cell_text)
    return m.group(1) if m else cell_text


def site_rows(driver, table_id):
    """[(cells...)] of a site table, the stack cell reduced to its innermost function."""
    return driver.execute_script(r'''
      const t = document.getElementById(arguments[0]);
      if (!t) return null;
      return Array.from(t.querySelectorAll('tr')).slice(1).map(tr => Array.from(tr.cells).map(
          c => c.querySelector('b') ? c.querySelector('b').textContent : c.textContent));''',
        table_id)


def flame_state(driver, section):
    """The flame graph of a process section as drawn."""
    import time
    for _ in range(100):  # drawn when shown (a ResizeObserver's callback)
        st = driver.execute_script(r'''
          const s = document.querySelector('section.process[data-proc="' + arguments[0] + '"]');
          const v = s.querySelector('div.views');
          const g = v.querySelector('div.flame-graph');
          return {frames: g.querySelectorAll('div.fr').length,
                  labels: Array.from(g.querySelectorAll('div.fr')).map(d => d.textContent),
                  matches: Array.from(g.querySelectorAll('div.fr.match')).map(d => d.textContent),
                  height: g.getBoundingClientRect().height,
                  metric: v.dataset.metric || null,
                  total: v.dataset.total || null,
                  value: v.querySelector('select.metric').value,
                  options: Array.from(v.querySelectorAll('select.metric option')).map(o => o.value),
                  matched: v.querySelector('span.flame-matched').textContent,
                  matchedValue: v.dataset.matchedValue || null,
                  rootDetail: (function () {
                    const root = g.querySelector('div.fr');  // 'all' comes first
                    if (!root) return '';
                    root.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
                    return v.querySelector('div.flame-detail').textContent;
                  })()};''', section)
        if st['metric']:
            return st
        time.sleep(0.05)
    return st


def set_metric(driver, metric):
    driver.execute_script(
        "const s = Array.from(document.querySelectorAll('select.metric')).filter("
        "  e => e.offsetParent !== null)[0]; s.value = arguments[0];"
        "s.dispatchEvent(new Event('change'));", metric)


def search_flame(driver, term, section='0'):
    """Types `term` into the flame graph's search box; waits for the visible
    graph's answer; returns flame_state."""
    import time
    driver.execute_script(
        "const i = Array.from(document.querySelectorAll('input.flame-search')).filter("
        "  e => e.offsetParent !== null)[0]; i.value = arguments[0];"
        "i.dispatchEvent(new Event('change'));", term)
    return flame_state(driver, section)


def check_temporaries(driver, heapsight, program, work, shot, failures):
    """Per-site temporaries, the metric switch and the flame graph search on
    tests/cli/temporaries_program (known counts per site)."""
    traces = record(heapsight, program, os.path.join(work, 'temporaries'), [])
    assert len(traces) == 1, traces
    page = os.path.join(work, 'temporaries.html')
    run([heapsight, 'html', traces[0], '-o', page])
    driver.get('file://' + page)
    rows = site_rows(driver, 'p0-temporary')
    check(rows is not None, 'the page has a "most temporary allocations" table', failures)
    got = {innermost(r[5]): int(r[0].replace(',', '')) for r in rows or []}
    check(got == TEMPORARIES, 'temporary allocations per site: %s' % got, failures)
    for r in rows or []:
        check(r[0] == r[1] and r[2] == '100.0%',
              '%s: every allocation of the site is temporary: %s' % (innermost(r[5]), r[:3]),
              failures)
    # The metric switch: one flame graph, drawn for the chosen metric.
    check_metric_totals(driver, heapsight, traces[0], '0', failures)
    st = flame_state(driver, '0')
    check(st['metric'] == 'alloc_bytes' and st['frames'] > 0,
          'bytes allocated is the first metric shown: %s' % st, failures)
    check(st['options'][:8] == ['alloc_bytes', 'alloc_count', 'peak_bytes', 'peak_count',
                                'not_freed_bytes', 'not_freed_count', 'temporary_count',
                                'temporary_bytes'],
          'the switch offers every metric: %s' % st['options'], failures)
    set_metric(driver, 'temporary_count')
    st = flame_state(driver, '0')
    check(st['metric'] == 'temporary_count' and st['value'] == 'temporary_count' and
          st['total'] == '200',
          'switching to temporary draws its numbers: %s' % st, failures)
    # Search: the match total of the graph on view, in its unit.
    for name, count in TEMPORARIES.items():
        st = search_flame(driver, name)
        check(st['matchedValue'] == str(count) and
              st['matched'].endswith('(%s allocations)' % format(count, ',')),
              'searching %s in the temporary graph matches %d: %s' % (name, count, st), failures)
    st = search_flame(driver, 'temp_alloc|make_inner')
    check(st['matchedValue'] == '150', 'a regular expression matches both sites: %s' % st,
          failures)
    driver.save_screenshot(shot)
    set_metric(driver, 'alloc_bytes')
    st = flame_state(driver, '0')
    check(st['metric'] == 'alloc_bytes' and st['matchedValue'] == str(100 * 32 + 50 * 16),
          'back on bytes allocated, the same search matches 100 x 32 + 50 x 16 bytes: %s' % st,
          failures)
    st = search_flame(driver, 'no_such_function_anywhere')
    check(st['matchedValue'] == '0' and st['matched'].startswith('Matched: 0.00%'),
          'a search without a match says 0: %s' % st, failures)


def check_sampled(driver, heapsight, program, work, shot, failures):
    """A sampled trace: the chart draws the estimated heap (its maximum is
    the estimated peak `report` prints) and says so, the site tables are
    labelled estimates and add up to the estimated peak, and temporaries are
    not offered."""
    out_dir = os.path.join(work, 'sampled')
    os.makedirs(out_dir)
    # One sample per MiB: the 10 MB and 30 MB blocks are recorded (but for a
    # chance of 1 - exp(-9.5) = 7.5e-5) and scaled by 1/p(size): the
    # estimates differ from the recorded bytes, and every check compares the
    # page with `report` of the same trace.
    run([heapsight, 'record', '-q', '-o', out_dir, '--option', 'sample-bytes=1048576', '--',
         program])
    traces = [os.path.join(out_dir, f) for f in os.listdir(out_dir) if f.endswith('.hst')]
    assert len(traces) == 1, traces
    peak_bytes, _ = report_peak(heapsight, traces[0])
    page = os.path.join(work, 'sampled.html')
    run([heapsight, 'html', traces[0], '-o', page])
    driver.get('file://' + page)
    r = driver.execute_script(r'''
      const s = document.querySelector('section.process');
      const peak = s.querySelector('svg.timeline g.peak');
      return {peak: peak ? +peak.dataset.bytes : null,
              axis: Array.from(s.querySelectorAll('svg.timeline text')).map(t => t.textContent),
              caption: s.querySelector('figure.heap-chart figcaption').textContent,
              headers: Array.from(s.querySelectorAll('table.sites th')).map(t => t.textContent),
              temporary: Array.from(s.querySelectorAll('h3')).filter(
                  h => h.textContent === 'Most temporary allocations').map(
                  h => h.nextElementSibling.textContent),
              tables: s.querySelectorAll('table.sites').length,
              notes: s.querySelectorAll('p.estimate + table.sites').length};''')
    check(r['peak'] == peak_bytes,
          'the sampled chart\'s maximum %s is report\'s estimated peak %d' % (r['peak'], peak_bytes),
          failures)
    check('live heap (estimate)' in r['axis'], 'the heap axis says "(estimate)"', failures)
    check('the line is the estimated heap' in r['caption'],
          'the caption says the line is the estimated heap', failures)
    check(r['headers'][:2] == ['bytes (estimate)', 'allocations (estimate)'],
          'the site tables label their numbers as estimates: %s' % r['headers'][:2], failures)
    check(r['tables'] >= 2 and r['notes'] == r['tables'],
          'each site table has its estimate note: %d of %d' % (r['notes'], r['tables']), failures)
    check(len(r['temporary']) == 1 and r['temporary'][0].startswith(
        'not known in a sampled trace'), 'temporaries are "not known in a sampled trace": %s'
          % r['temporary'], failures)
    rows = site_rows(driver, 'p0-peak')
    total = sum(int(row[0].replace(',', '')) for row in rows or [])
    check(rows and len(rows) < 10 and total == peak_bytes,
          'the sites live at the peak add up to the estimated peak: %d vs %d' % (total, peak_bytes),
          failures)
    # `report`'s list is the same estimate, labelled so.
    text = run([heapsight, 'report', traces[0]])
    m = re.search(r'^top call sites live at the peak \(estimates\):\n((?:  .*\n)+)', text, re.M)
    listed = [int(x.replace(',', '')) for x in
              re.findall(r'^  ([\d,]+) bytes', m.group(1), re.M)] if m else []
    check(m is not None and sum(listed) == peak_bytes,
          'report\'s "top call sites live at the peak (estimates)" add up to the estimated '
          'peak: %s vs %d' % (listed, peak_bytes), failures)
    st = flame_state(driver, '0')
    check('temporary_count' not in st['options'], 'no temporary flame graph: %s' % st['options'],
          failures)
    set_metric(driver, 'peak_bytes')
    st = search_flame(driver, '.')
    check(st['matchedValue'] == str(peak_bytes),
          'the peak flame graph of a sampled trace sums to the estimated peak: %s' % st, failures)
    driver.save_screenshot(shot)


LEAK_CASES = ['indirect_leak', 'interior_ptr', 'mismatch']
CLASS_KEYS = {'definite': 'definitely_lost', 'indirect': 'indirectly_lost',
              'possible': 'possibly_lost', 'reachable': 'still_reachable'}


def check_leaks(driver, heapsight, corpus_bin, corpus_data, work, shot, failures):
    """The leaks section on leak corpus programs: each class's bytes and
    blocks, and the free errors with both stacks, are the Valgrind-checked
    numbers of the program's expect file (tests/corpus/data)."""
    import json
    for case in LEAK_CASES:
        with open(os.path.join(corpus_data, case + '.expect.json'), encoding='utf-8') as f:
            want = json.load(f)['expected']['processes'][0]
        traces = record(heapsight, os.path.join(corpus_bin, case), os.path.join(work, case), [])
        assert len(traces) == 1, traces
        page = os.path.join(work, case + '.html')
        run([heapsight, 'html', traces[0], '-o', page])
        driver.get('file://' + page)
        r = driver.execute_script(r'''
          const s = document.querySelector('section.process div.leaks');
          if (!s) return null;
          const classes = {};
          for (const h of s.querySelectorAll('h4.leak-class')) {
            classes[h.dataset.kind] = {bytes: +h.dataset.bytes, blocks: +h.dataset.blocks,
                                       groups: 0, title: h.title, text: h.textContent};
          }
          for (const g of s.querySelectorAll('pre.lsan')) {
            classes[g.dataset.kind].groups += +g.dataset.bytes;
          }
          return {classes: classes,
                  errors: Array.from(s.querySelectorAll('pre.free-error')).map(e => e.textContent),
                  lsan: Array.from(s.querySelectorAll('pre.lsan')).map(e => e.textContent)};''')
        check(r is not None, '%s: the page has a leaks section' % case, failures)
        if r is None:
            continue
        for kind, key in CLASS_KEYS.items():
            got = r['classes'].get(kind, {})
            check(got.get('bytes') == want[key]['bytes'] and
                  got.get('blocks') == want[key]['blocks'] and got.get('groups') == got.get('bytes'),
                  '%s: %s is %s, its stacks add up to it: %s' % (case, key, want[key], got),
                  failures)
            check(got.get('title', '') != '', '%s: %s has its definition' % (case, kind), failures)
            # The views' metric of the class: its root is the class's bytes.
            options = flame_state(driver, '0')['options']
            if want[key]['blocks'] == 0:
                check(kind + '_bytes' not in options,
                      '%s: no %s metric without such leaks' % (case, kind), failures)
                continue
            set_metric(driver, kind + '_bytes')
            st = flame_state(driver, '0')
            check(st['metric'] == kind + '_bytes' and st['total'] == str(want[key]['bytes']),
                  '%s: the views\' %s_bytes metric totals %d bytes: %s'
                  % (case, kind, want[key]['bytes'], (st['metric'], st['total'])), failures)
        set_metric(driver, 'alloc_bytes')
        errors = want.get('errors', [])
        check(len(r['errors']) == len(errors),
              '%s: %d free errors shown: %d' % (case, len(errors), len(r['errors'])), failures)
        for e in errors:
            hits = [t for t in r['errors'] if t.startswith(e['kind'].replace('_', ' ')) and
                    ' of %d byte(s) ' % e['bytes'] in t and e['in_function'] in t and
                    'allocated at:' in t]
            check(len(hits) == 1, '%s: the %s in %s of %d bytes, with both stacks' %
                  (case, e['kind'], e['in_function'], e['bytes']), failures)
        if case == 'indirect_leak':
            check(any(t.startswith('Direct leak of 48 byte(s) in 1 object(s)') and
                      '#0 make_node (indirect_leak.c:' in t for t in r['lsan']),
                  'indirect_leak: an LSan-style stack of the direct leak', failures)
            driver.execute_script("document.querySelector('div.leaks').scrollIntoView()")
            driver.save_screenshot(shot)


def check_demo(driver, heapsight, program, work, shot, failures):
    """The README demo's page (scripts/setup-and-demo.sh writes it for
    examples/01_memory_profiling): its views are drawn, their root is
    report's bytes allocated; the screenshot is the one docs/images shows
    (scripts/update-html-screenshot.sh copies it there)."""
    traces = record(heapsight, program, os.path.join(work, 'demo'), ['costly'])
    page = os.path.join(work, 'demo.html')
    run([heapsight, 'html', traces[0], '-o', page])
    driver.get('file://' + page)
    st = flame_state(driver, '0')
    want = report_json(heapsight, traces[:1])[0]['totals']['bytes_allocated']
    check(st['frames'] > 3 and st['total'] == str(want),
          'demo page: the flame graph is drawn, its root is report\'s %d bytes allocated: %s'
          % (want, (st['frames'], st['total'])), failures)
    driver.save_screenshot(shot)
    driver.execute_script("document.querySelector('div.tree-box tr[data-id]').click();"
                          "document.querySelector('div.views').scrollIntoView()")
    driver.save_screenshot(shot.replace('.png', '_views.png'))
    # The standard library's plumbing (BuildIndex's std::vector growth:
    # 8,192 bytes through operator new) folds into BuildIndex until shown.
    build = '(anonymous namespace)::BuildIndex()'
    self_bytes = lambda: {r[0].lstrip('\u25b8\u25be'): r[3] for r in tree_rows(driver)}.get(build)
    folded = self_bytes()
    hidden = search_flame(driver, '^std::')['matchedValue']
    driver.execute_script("document.querySelector('input.flame-lib').click()")
    driver.execute_script("document.querySelector('div.tree-box tr[data-id]').click()")
    shown = self_bytes()
    found = search_flame(driver, '^std::')['matchedValue']
    search_flame(driver, '')
    check(folded == '67,117,056' and hidden == '0' and shown == '67,108,864' and
          found == '8192',
          'demo page: BuildIndex\'s std::vector growth (8,192 bytes) is folded into it (self '
          '%s, std:: frames match %s bytes) until shown (self %s, std:: frames match %s)'
          % (folded, hidden, shown, found), failures)
    driver.execute_script("document.querySelector('input.flame-lib').click()")
    driver.execute_script("document.querySelector('div.tree-box tr[data-id]').click()")
    rows = {r[0].lstrip('\u25b8\u25be'): r[1] for r in tree_rows(driver)}
    check(rows.get(build) == 'several places',
          'demo page: BuildIndex allocates from two lines, its row says "several places": %s'
          % rows, failures)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--heapsight', required=True)
    ap.add_argument('--program', required=True)
    ap.add_argument('--temporaries', required=True)
    ap.add_argument('--demo', help='examples/01_memory_profiling (the README demo)')
    ap.add_argument('--corpus-bin', required=True)
    ap.add_argument('--corpus-data', required=True)
    ap.add_argument('--artifacts', required=True)
    args = ap.parse_args()
    chromium, chromedriver = find_browser()
    if not chromium or not chromedriver:
        print('SKIP: chromium or chromedriver not installed')
        return 77
    from selenium import webdriver  # python3-selenium; a missing one is a failure
    from selenium.webdriver.chrome.service import Service

    work = tempfile.mkdtemp(prefix='html-page-', dir=os.environ.get('TMPDIR'))
    failures = []
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ('--headless=new', '--no-sandbox', '--disable-gpu', '--window-size=1280,1600',
              '--disable-dev-shm-usage'):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(chromedriver), options=opts)
    try:
        one = record(args.heapsight, args.program, os.path.join(work, 'one'), [HOSTILE_ARG])
        assert len(one) == 1, one
        page = os.path.join(work, 'two_phase.html')
        run([args.heapsight, 'html', one[0], '-o', page])
        check_two_phase(driver, args.heapsight, one[0], page,
                        os.path.join(args.artifacts, 'html_page_two_phase.png'), failures)

        fam = record(args.heapsight, args.program, os.path.join(work, 'family'),
                     ['family', HOSTILE_ARG])
        assert len(fam) == 3, fam
        page = os.path.join(work, 'family.html')
        # The family found from one of its traces: the exec'd image's (it
        # has its pre-exec image's pid, so its name gets the .1 suffix).
        seed = [t for t in fam if t.endswith('.1.hst')]
        assert len(seed) == 1, fam
        run([args.heapsight, 'html', '--family', seed[0], '-o', page])
        # A quoted glob: heapsight expands it.
        glob_page = os.path.join(work, 'family_glob.html')
        run([args.heapsight, 'html', os.path.join(work, 'family', '*.hst'), '-o', glob_page])
        with open(glob_page, encoding='utf-8') as f:
            select = re.search(r'<select id="process-select">.*?</select>', f.read(), re.S)
            check(select is not None and select.group(0).count('<option value=') == 3,
                  'a quoted glob makes the same three-process page', failures)
        check_family(driver, args.heapsight, fam, page,
                     os.path.join(args.artifacts, 'html_page_family.png'), failures)
        check_temporaries(driver, args.heapsight, args.temporaries, work,
                          os.path.join(args.artifacts, 'html_page_temporaries.png'), failures)
        check_sampled(driver, args.heapsight, args.program, work,
                      os.path.join(args.artifacts, 'html_page_sampled.png'), failures)
        check_leaks(driver, args.heapsight, args.corpus_bin, args.corpus_data, work,
                    os.path.join(args.artifacts, 'html_page_leaks.png'), failures)
        if args.demo:
            check_demo(driver, args.heapsight, args.demo, work,
                       os.path.join(args.artifacts, 'html_page_demo.png'), failures)
    finally:
        driver.quit()
    if failures:
        print('%d check(s) failed; pages kept in %s' % (len(failures), work))
        return 1
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
