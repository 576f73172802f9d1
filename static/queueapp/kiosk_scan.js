// The kiosk's QR scanner: the camera feeds the browser's own BarcodeDetector
// (Chromium, Android); what it reads (the booking page's address) goes into the
// code field and the form is sent. Without a camera or the API the section stays
// hidden and the code is typed. A hardware scanner that types into the focused
// field and presses Enter works with no script at all.
(function () {
  "use strict";
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices) return;
  const section = document.getElementById("scan");
  const video = document.getElementById("scan-video");
  const input = document.getElementById("booking-code-input");
  const form = document.getElementById("check-in-form");
  if (!section || !video || !input || !form) return;
  section.hidden = false;
  document.getElementById("scan-start").addEventListener("click", async function () {
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "user" } });
    } catch (e) {
      section.hidden = true;
      return;
    }
    video.srcObject = stream;
    await video.play();
    const detector = new BarcodeDetector({ formats: ["qr_code"] });
    const look = async function () {
      const found = await detector.detect(video).catch(function () { return []; });
      if (found.length) {
        stream.getTracks().forEach(function (t) { t.stop(); });
        input.value = found[0].rawValue;
        form.submit();
        return;
      }
      setTimeout(look, 250);
    };
    look();
  });
})();
