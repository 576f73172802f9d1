// Web push opt-in on the ticket page (and for managers' staff alerts on the console,
// the service worker's scope in data-scope): only on a click (browsers require a gesture),
// register the service worker, subscribe with the server's VAPID key, send the subscription;
// and on "Stop browser notifications", unsubscribe this browser too.
(function () {
  // Stopping browser notifications also drops this browser's subscription (best
  // effort: the server has erased it either way once the form is posted).
  const stopPush = document.querySelector("form.alerts-stop[data-channel=push]");
  if (stopPush && "serviceWorker" in navigator) {
    stopPush.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const registration = await navigator.serviceWorker.getRegistration(stopPush.dataset.scope || "/t/");
        const subscription = registration && await registration.pushManager.getSubscription();
        if (subscription) await subscription.unsubscribe();
      } catch (error) { /* the server-side stop below is what counts */ }
      stopPush.submit();
    }, { once: true });
  }
  const button = document.getElementById("push-optin");
  const status = document.getElementById("push-status");
  if (!button) return;
  const SUBSCRIBE_TIMEOUT_MS = 10000;
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !window.isSecureContext) {
    status.textContent = gettext("This browser cannot receive notifications here; use SMS or e-mail.");
    return;
  }
  function keyBytes(base64url) {
    const padded = base64url.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((base64url.length + 3) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  }
  function csrf() {
    const field = document.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }
  button.hidden = false;
  button.addEventListener("click", async () => {
    button.disabled = true;
    status.textContent = gettext("Asking this browser…");
    try {
      const permission = await Notification.requestPermission();
      if (permission !== "granted") throw new Error(gettext("Notifications are blocked for this site."));
      const registration = await navigator.serviceWorker.register(
        button.dataset.sw, { scope: button.dataset.scope || "/t/" });
      await navigator.serviceWorker.ready;
      // A browser that cannot reach its push service may never answer: give up after a while.
      const subscription = await Promise.race([
        registration.pushManager.subscribe({
          userVisibleOnly: true, applicationServerKey: keyBytes(button.dataset.key),
        }),
        new Promise((_, reject) => setTimeout(
          () => reject(new Error(gettext("the browser's push service did not answer"))), SUBSCRIBE_TIMEOUT_MS)),
      ]);
      const response = await fetch(button.dataset.url, {
        method: "POST", headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
        body: JSON.stringify(subscription), credentials: "same-origin",
      });
      const answer = await response.json();
      status.textContent = answer.detail;
      if (!response.ok) button.disabled = false;
    } catch (error) {
      status.textContent = interpolate(gettext("Could not turn on notifications: %s"), [error.message]);
      button.disabled = false;
    }
  });
})();
