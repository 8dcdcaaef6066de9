// The live room: one EventSource on /events, fed by the server's broker.
//
//   unnamed events ("message")  a chat message: {name, text, time}
//   "presence"                  the number of pages open: {online}
//   "reset"                     the server no longer has what this page missed
//   "close"                     the server is shutting down: stop for good
//
// A dropped stream (network, server restart) is reopened by the browser
// itself, which sends the Last-Event-ID it last saw; the server replays what
// the page missed, each message once.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const log = $("log");
  const list = $("messages");
  const empty = $("empty");
  const status = $("status");
  const statusText = $("status-text");
  const online = $("online");
  const form = $("composer");
  const nameInput = $("name");
  const textInput = $("text");
  const send = $("send");
  const formError = $("form-error");

  const nameKey = "echosse-chat-name";
  nameInput.value = localStorage.getItem(nameKey) || "";

  let source = null; // the EventSource
  let lastId = "";   // the last event ID seen, to resume from after a close
  let opened = false; // a stream was open before: the next open is a reconnect

  // The page's state, for people (the pill) and for scripts (data-state).
  function setState(state, label) {
    status.dataset.state = state;
    statusText.textContent = label || state;
  }

  const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  const fullDate = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

  // hue gives each name a stable colour, from a palette of distinct ones.
  const hues = [14, 38, 95, 152, 188, 210, 262, 328];
  function hue(name) {
    let h = 0;
    for (const ch of name) h = (Math.imul(h, 31) + ch.codePointAt(0)) >>> 0;
    return hues[h % hues.length];
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text; // never innerHTML: names and texts are the visitors'
    return node;
  }

  // append adds a row, and keeps the newest in view unless the reader has
  // scrolled up to read older ones.
  function append(row) {
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 96;
    list.append(row);
    empty.hidden = true;
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  function addMessage(m, id) {
    const row = el("li", "msg");
    if (id) row.dataset.id = id;
    if (m.name === nameInput.value.trim()) row.classList.add("own");

    const avatar = el("span", "avatar", [...m.name][0].toUpperCase());
    avatar.style.setProperty("--hue", hue(m.name));
    avatar.setAttribute("aria-hidden", "true");

    const bubble = el("div", "bubble");
    const head = el("p", "head");
    head.append(el("span", "who", m.name));
    const when = new Date(m.time);
    const time = el("time", "when", clock.format(when));
    time.dateTime = m.time;
    time.title = fullDate.format(when);
    head.append(time);
    bubble.append(head, el("p", "text", m.text));

    row.append(avatar, bubble);
    append(row);
  }

  // addNotice shows a line from the room itself, with an optional button.
  function addNotice(text, kind, action) {
    const row = el("li", "notice " + (kind || ""));
    row.append(el("span", "", text));
    if (action) {
      const button = el("button", "link", action.label);
      button.type = "button";
      button.addEventListener("click", () => {
        button.disabled = true;
        action.run();
      });
      row.append(button);
    }
    append(row);
  }

  function connect() {
    // A first connection resumes from the ID GET /api/messages gave; the
    // browser sends the Last-Event-ID header only on its own reconnects.
    const url = lastId ? "/events?lastEventID=" + encodeURIComponent(lastId) : "/events";
    const es = new EventSource(url);
    source = es;
    setState(opened ? "reconnecting" : "connecting");

    es.addEventListener("open", () => {
      setState("live");
      opened = true;
    });
    es.addEventListener("error", () => {
      if (es.readyState === EventSource.CLOSED) {
        // The server answered with something other than a stream: the
        // browser gives up, so offer to try again.
        setState("offline");
        addNotice("The stream is unavailable.", "warn", { label: "Try again", run: connect });
      } else {
        setState("reconnecting"); // the browser retries by itself
      }
    });
    es.addEventListener("message", (e) => {
      lastId = e.lastEventId;
      addMessage(JSON.parse(e.data), e.lastEventId);
    });
    es.addEventListener("presence", (e) => {
      lastId = e.lastEventId;
      online.textContent = String(JSON.parse(e.data).online);
    });
    es.addEventListener("reset", (e) => {
      addNotice(JSON.parse(e.data).message, "warn");
    });
    es.addEventListener("close", () => {
      // The server is going away: without close(), the browser would
      // reconnect to it in a loop.
      es.close();
      setState("closed");
      online.textContent = "–";
      addNotice("The server closed the stream.", "", { label: "Reconnect", run: connect });
    });
  }

  function showError(text) {
    formError.textContent = text;
    formError.hidden = !text;
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const name = nameInput.value.trim();
    const text = textInput.value.trim();
    if (!name || !text) return;
    localStorage.setItem(nameKey, name);
    send.disabled = true;
    try {
      const res = await fetch("/messages", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ name, text }),
      });
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        showError(body.message || res.statusText);
        return;
      }
      textInput.value = ""; // the message itself arrives on the stream, like everyone else's
      showError("");
    } catch (err) {
      showError("Could not send: " + err.message);
    } finally {
      send.disabled = false;
      textInput.focus();
    }
  });

  // Start with the conversation so far, then go live from where it ends.
  async function start() {
    try {
      const res = await fetch("/api/messages", { headers: { Accept: "application/json" } });
      if (res.ok) {
        const body = await res.json();
        for (const m of body.messages) addMessage(m, m.id);
        lastId = body.lastEventID || "";
      }
    } catch (_) {
      // No history: the stream still works.
    }
    connect();
  }

  // For scripts and the browser console.
  window.chat = {
    get source() {
      return source;
    },
  };
  start();
})();
