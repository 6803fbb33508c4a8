// The weft dashboard: follows /events (a snapshot of the run every half second)
// and draws the microthread table, the tree, the channels, the workers and the
// charts. Cancelling a microthread needs the token weft printed at start.
'use strict';

const $ = (id) => document.getElementById(id);
let last = null;
let sortKey = 'id';
const samples = [];

function cell(row, text, cls) {
  const td = document.createElement('td');
  td.textContent = text === null || text === undefined ? '' : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function age(seconds) {
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  return `${Math.floor(seconds / 60)} min`;
}

function compare(a, b) {
  const x = a[sortKey], y = b[sortKey];
  if (x === y) return a.id - b.id;
  if (x === null || x === undefined) return 1;
  if (y === null || y === undefined) return -1;
  if (typeof x === 'number') return sortKey === 'id' || sortKey === 'parent' ? x - y : y - x;
  return String(x).localeCompare(String(y));
}

function drawTable(snap) {
  const body = $('microthreads').querySelector('tbody');
  const rows = snap.microthreads.slice().sort(compare);
  body.replaceChildren(...rows.map((m) => {
    const tr = document.createElement('tr');
    tr.className = m.state.replace(' ', '-');
    tr.dataset.id = m.id;
    cell(tr, m.id, 'num');
    cell(tr, m.name);
    cell(tr, m.parent, 'num');
    cell(tr, m.node);
    cell(tr, m.state, 'state');
    cell(tr, m.waits);
    cell(tr, age(m.age), 'num');
    cell(tr, m.fuel, 'num');
    cell(tr, m.sent, 'num');
    const act = cell(tr, '', 'act');
    if (snap.control && !snap.status) {
      const b = document.createElement('button');
      b.textContent = 'cancel';
      b.className = 'cancel';
      b.onclick = () => cancel(m.id);
      act.appendChild(b);
    }
    return tr;
  }));
  $('shown').textContent = snap.total > snap.microthreads.length
    ? `(${snap.microthreads.length} of ${snap.total})` : `(${snap.total})`;
}

function drawTree(snap) {
  const byParent = new Map();
  const ids = new Set(snap.microthreads.map((m) => m.id));
  for (const m of snap.microthreads) {
    const p = m.parent !== null && ids.has(m.parent) ? m.parent : 'root';
    if (!byParent.has(p)) byParent.set(p, []);
    byParent.get(p).push(m);
  }
  const branch = (key) => (byParent.get(key) || []).map((m) => {
    const li = document.createElement('li');
    li.textContent = `${m.id}${m.name ? ' ' + m.name : ''} `;
    const s = document.createElement('span');
    s.className = 'state';
    s.textContent = m.state;
    li.appendChild(s);
    const kids = branch(m.id);
    if (kids.length) {
      const ul = document.createElement('ul');
      ul.replaceChildren(...kids);
      li.appendChild(ul);
    }
    return li;
  });
  $('tree').replaceChildren(...branch('root'));
}

function drawChannels(snap) {
  $('channels-shown').textContent = snap.channels_total > snap.channels.length
    ? `(${snap.channels.length} of ${snap.channels_total})` : `(${snap.channels_total})`;
  $('channels').querySelector('tbody').replaceChildren(...snap.channels.map((c) => {
    const tr = document.createElement('tr');
    cell(tr, c.id, 'num');
    cell(tr, c.capacity, 'num');
    cell(tr, c.queued, 'num');
    cell(tr, c.senders, 'num');
    cell(tr, c.receivers, 'num');
    cell(tr, c.waiting.map((w) => `${w.id} ${w.how}`).join(', '));
    return tr;
  }));
  $('workers').querySelector('tbody').replaceChildren(...snap.workers.map((w, i) => {
    const tr = document.createElement('tr');
    cell(tr, i, 'num');
    cell(tr, `${w.busy.toFixed(1)} s`, 'num');
    cell(tr, w.runs, 'num');
    cell(tr, w.queued, 'num');
    return tr;
  }));
}

function rates(key) {
  const out = [];
  for (let i = 1; i < samples.length; i++) {
    const dt = samples[i].t - samples[i - 1].t;
    out.push(dt > 0 ? (samples[i][key] - samples[i - 1][key]) / dt : 0);
  }
  return out;
}

function plot(id, values, max) {
  const canvas = $(id);
  const g = canvas.getContext('2d');
  g.clearRect(0, 0, canvas.width, canvas.height);
  const top = Math.max(max || 0, ...values, 1);
  g.strokeStyle = '#3b6fd8';
  g.lineWidth = 1.5;
  g.beginPath();
  values.forEach((v, i) => {
    const x = values.length > 1 ? (i / (values.length - 1)) * (canvas.width - 4) + 2 : 2;
    const y = canvas.height - 12 - (v / top) * (canvas.height - 16);
    if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
  });
  g.stroke();
  g.fillStyle = '#6b7385';
  g.font = '10px system-ui';
  const now = values.length ? values[values.length - 1] : 0;
  g.fillText(`${Number.isInteger(now) ? now : now.toFixed(2)} (max ${Number.isInteger(top) ? top : top.toFixed(2)})`, 2, canvas.height - 1);
}

function drawCharts(snap) {
  for (const s of snap.history) {
    if (!samples.length || s.t > samples[samples.length - 1].t) samples.push(s);
  }
  while (samples.length > 300) samples.shift();
  plot('chart-spawns', rates('spawned'));
  plot('chart-live', samples.map((s) => s.live));
  plot('chart-messages', rates('sent'));
  const workers = samples.length ? samples[samples.length - 1].workers : 1;
  plot('chart-busy', rates('busy').map((b) => b / Math.max(workers, 1)), 1);
}

function draw(snap) {
  last = snap;
  const st = snap.stats;
  const status = $('status');
  status.textContent = snap.status ? `ended: ${snap.status}` : 'running';
  status.className = snap.status ? 'status ended' : 'status live';
  $('counters').textContent =
    `live ${st.live} · spawned ${st.spawned} · finished ${st.finished} · failed ${st.failed} · ` +
    `messages ${st.messages_sent} · restarts ${st.restarts}`;
  $('control').hidden = !snap.control;
  const report = $('report');
  report.hidden = !snap.report;
  report.textContent = snap.report || '';
  drawTable(snap);
  drawTree(snap);
  drawChannels(snap);
  drawCharts(snap);
}

async function cancel(id) {
  const token = $('token').value.trim();
  if (!token) {
    $('notice').textContent = 'give the control token first';
    return;
  }
  const r = await fetch(`/api/cancel/${id}`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
  $('notice').textContent = (await r.text()).trim();
}

for (const th of document.querySelectorAll('th[data-sort]')) {
  th.onclick = () => {
    sortKey = th.dataset.sort;
    document.querySelectorAll('th.sorted').forEach((t) => t.classList.remove('sorted'));
    th.classList.add('sorted');
    if (last) drawTable(last);
  };
}

const events = new EventSource('/events');
events.onmessage = (e) => {
  const snap = JSON.parse(e.data);
  draw(snap);
  if (snap.status) events.close();
};
events.onerror = () => {
  if (!last || !last.status) $('status').textContent = 'disconnected';
};
