// Service worker for ticket alerts: shows the pushed message with a "Stop alerts"
// action (its stop link); a click on the notification opens the ticket page.
const canAct = () => (self.Notification && Notification.maxActions > 0);

self.addEventListener("push", (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { data = { body: event.data.text() }; }
  const options = {
    body: data.body || "", tag: data.tag || "queue", renotify: true,
    data: { url: data.url || "/", stop: data.stop || "" },
  };
  if (data.stop && canAct()) {
    options.actions = [{ action: "stop", title: data.stop_title || "Stop alerts" }];
  } else if (data.stop_hint) {
    options.body += "\n" + data.stop_hint;  // no actions here: the ticket page has the stop button
  }
  event.waitUntil(self.registration.showNotification(data.title || "Queue", options));
});

// Where a click goes: the stop link for the "stop" action, else the ticket page.
function clickTarget(data, action) {
  return action === "stop" && data.stop ? data.stop : data.url;
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(clients.openWindow(clickTarget(event.notification.data || {}, event.action)));
});
