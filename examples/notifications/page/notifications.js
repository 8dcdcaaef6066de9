// The notifications page: it signs in to the API, which is on another
// origin (?api=, by default http://localhost:8080), gets an HttpOnly session
// cookie, and shows the stream of GET /events, its user's own notifications
// and the broadcasts:
//
//   "notification"  {from, text}: one notification
//   "reload"        the server no longer has some that this page missed
//
// When a stream drops (its instance died, or the token that opened it
// expired), the browser reconnects by itself after the retry delay and sends
// the Last-Event-ID it last saw; whichever instance it reaches replays what
// the page missed, through the shared broker. When the browser gives up
// instead, which it does on any answer but 200 (a 502 from the proxy while
// no instance is up, a 401 once the session is gone), the page renews its
// session and creates a new EventSource after a delay that doubles, with
// the last ID in its URL (?lastEventID=): a new EventSource sends no
// Last-Event-ID header.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const api = new URLSearchParams(location.search).get("api") || "http://localhost:8080";

  const firstDelay = 1000; // before a new EventSource, doubled each time up to maxDelay
  const maxDelay = 30000;

  let source = null; // the EventSource
  let lastId = ""; // the ID of the last notification received
  let delay = firstDelay;
  let retryTimer = 0;
  let refreshTimer = 0;
  let downSince = null; // when the page lost its stream, while it has none
  const outages = []; // each time the page was without a stream: {from, to}, in ms of performance.now()
  let gaps = 0; // "reload" events received

  // The page's state, for people (the pill) and for scripts (data-state):
  // signed-out, connecting, live, reconnecting (the browser retries),
  // offline (the page retries).
  function setState(state) {
    $("status").dataset.state = state;
    $("status").textContent = state;
    if (state === "live" && downSince !== null) {
      outages.push({ from: downSince, to: performance.now() });
      downSince = null;
    } else if ((state === "reconnecting" || state === "offline") && downSince === null) {
      downSince = performance.now();
    }
  }

  function jittered(ms) {
    return ms * (0.5 + Math.random()); // so that pages do not all come back at once
  }

  function item(className) {
    const li = document.createElement("li");
    if (className) li.className = className;
    $("list").prepend(li); // newest first
    return li;
  }

  function show(n, id) {
    const li = item();
    li.dataset.id = id;
    const from = document.createElement("span");
    from.className = "from";
    from.textContent = n.from; // never innerHTML: the text is other users'
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = n.text;
    li.append(from, text);
  }

  function connect() {
    clearTimeout(retryTimer);
    // Only a new EventSource needs the ID in its URL; the browser's own
    // reconnections send it in the Last-Event-ID header.
    const url = api + "/events" + (lastId ? "?lastEventID=" + encodeURIComponent(lastId) : "");
    const es = new EventSource(url, { withCredentials: true }); // the cookie, across origins
    source = es;
    if (downSince === null) setState("connecting");

    es.addEventListener("open", () => {
      delay = firstDelay;
      setState("live");
    });
    es.addEventListener("error", () => {
      if (es.readyState !== EventSource.CLOSED) {
        setState("reconnecting"); // the browser retries by itself
        return;
      }
      // The browser has given up on this EventSource: make a new one.
      setState("offline");
      retryTimer = setTimeout(reopen, jittered(delay));
      delay = Math.min(delay * 2, maxDelay);
    });
    es.addEventListener("notification", (e) => {
      lastId = e.lastEventId;
      show(JSON.parse(e.data), e.lastEventId);
    });
    es.addEventListener("reload", () => {
      // A real page refetches what it shows here.
      gaps++;
      item("notice").textContent = "Some notifications were missed while offline: reload the page to see them all.";
    });
  }

  // reopen renews the session, which also tells whether it is still alive,
  // then opens a new stream.
  async function reopen() {
    switch (await refresh()) {
      case "ok":
        connect();
        break;
      case "signed-out":
        signOut("Your session has ended: sign in again.");
        break;
      default: // the API is unreachable
        retryTimer = setTimeout(reopen, jittered(delay));
        delay = Math.min(delay * 2, maxDelay);
    }
  }

  // refresh asks for a fresh token before the old one expires, so that the
  // browser's next reconnection is accepted.
  async function refresh() {
    let res;
    try {
      res = await fetch(api + "/refresh", { method: "POST", credentials: "include" });
    } catch (_) {
      return "unreachable";
    }
    if (res.status === 401) return "signed-out";
    if (!res.ok) return "unreachable"; // a 502 from the proxy, say
    signedIn(await res.json());
    return "ok";
  }

  // signedIn shows who is signed in, and renews the session halfway to its
  // expiry (again five seconds later while the API is unreachable).
  function signedIn(session) {
    $("user").textContent = session.user;
    $("whoami").hidden = false;
    $("signin").hidden = true;
    clearTimeout(refreshTimer);
    const renew = async () => {
      const got = await refresh();
      if (got === "signed-out") signOut("Your session has ended: sign in again.");
      else if (got === "unreachable") refreshTimer = setTimeout(renew, 5000);
    };
    refreshTimer = setTimeout(renew, Math.max(1000, (Date.parse(session.expires) - Date.now()) / 2));
  }

  function signOut(why) {
    if (source) source.close();
    clearTimeout(retryTimer);
    clearTimeout(refreshTimer);
    downSince = null;
    setState("signed-out");
    $("whoami").hidden = true;
    $("signin").hidden = false;
    $("signin-error").textContent = why || "";
  }

  $("signin").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("signin-button").disabled = true;
    try {
      const res = await fetch(api + "/login", {
        method: "POST",
        credentials: "include", // keep the cookie the answer sets
        body: new URLSearchParams({ user: $("name").value.trim() }),
      });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) {
        $("signin-error").textContent = body.message || res.statusText;
        return;
      }
      $("signin-error").textContent = "";
      signedIn(body);
      connect();
    } catch (err) {
      $("signin-error").textContent = "Cannot reach the server: " + err.message;
    } finally {
      $("signin-button").disabled = false;
    }
  });

  // For scripts and the browser console.
  window.notifications = {
    get source() {
      return source;
    },
    get lastEventID() {
      return lastId;
    },
    get gaps() {
      return gaps;
    },
    outages,
  };

  // A session from an earlier visit goes on without signing in again.
  refresh().then((got) => {
    if (got === "ok") connect();
  });
})();
