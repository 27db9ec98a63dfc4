"""The page's style sheet and script (app.py passes them to Gradio as `css` and `head`)."""

CSS = """
.nqa-sources { font-size: 0.92rem; }
.nqa-head { font-weight: 600; margin: 0 0 .5rem 0; }
.nqa-src { border: 1px solid var(--border-color-primary); border-radius: 8px;
           padding: .4rem .7rem; margin-bottom: .5rem; }
.nqa-cited { border-left: 4px solid var(--color-accent); }
.nqa-uncited { opacity: .85; }
.nqa-src summary { cursor: pointer; }
.nqa-n { font-weight: 700; }
.nqa-head-text { font-weight: 600; }
.nqa-flash { outline: 2px solid var(--color-accent); }
.nqa-about { display: block; margin-left: 1.1rem; }
.nqa-status, .nqa-about, .nqa-meta, .nqa-alt {
  color: var(--body-text-color-subdued); font-size: .85em; }
.nqa-status { margin-left: .3rem; }
.nqa-text { white-space: pre-wrap; line-height: 1.45; }
.nqa-text mark { background: #fde68a; color: inherit; padding: 0 .1em; }
.nqa-details { color: var(--body-text-color-subdued); font-size: .85em; }
.nqa-details summary { cursor: pointer; }
.nqa-unsupported { text-decoration: underline dotted var(--color-accent);
  text-underline-offset: 3px; }
.nqa-flag { color: var(--body-text-color-subdued); font-size: .78em; white-space: nowrap; }
#sources-toggle, #sources-close { display: none; }
@media (max-width: 720px) {
  #sources-toggle, #sources-close { display: block; }
  #sources-col.nqa-sheet {
    position: fixed !important; left: 0; right: 0; bottom: 0; max-height: 55vh;
    overflow-y: auto; z-index: 100; margin: 0 !important; min-width: 0 !important;
    display: block !important;
    background: var(--background-fill-primary); padding: .4rem .75rem;
    border-top: 2px solid var(--color-accent); box-shadow: 0 -6px 18px rgba(0, 0, 0, .25); }
  #sources-col.nqa-sheet > :first-child {  /* its heading and Close stay in sight */
    position: sticky; top: -.4rem; z-index: 1; background: var(--background-fill-primary); }
}
#library [role=gridcell], #library [role=gridcell] *, #library [role=columnheader] {
  font-family: var(--font) !important; font-size: .9rem; }
.nqa-article h3 { margin: .8rem 0 .2rem 0; }
.nqa-passage { border-left: 3px solid var(--border-color-primary); margin: .6rem 0;
  padding-left: .6rem; }
.nqa-passage:nth-child(odd) { border-left-color: var(--color-accent); }
.nqa-pn { color: var(--body-text-color-subdued); font-size: .8em; }
.nqa-tr { margin: .35rem 0; }
.nqa-translate { font-size: .85em; padding: .1rem .5rem; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--border-color-primary); background: var(--background-fill-secondary); }
.nqa-translation { border-left: 3px solid var(--border-color-accent); padding-left: .5rem; }
.nqa-translated { margin: .2rem 0; }
.nqa-mt { color: var(--body-text-color-subdued); font-size: .8em; margin: 0; }
"""

# [n] in an answer links to #nqa-src-n (webui.chat.linked): open that card and bring it into view
CLICK_MARKERS = """<script>
const NARROW = "(max-width: 720px)";
// narrow screens: the sources as a sheet over the lower half, the latest answer above it
function openSheet() {
  const sheet = document.getElementById("sources-col");
  sheet.classList.add("nqa-sheet");
  const answers = document.querySelectorAll("#chat .bot");
  if (answers.length) answers[answers.length - 1].scrollIntoView({block: "start"});
  // the sheet shows the highlighted evidence first
  const mark = sheet.querySelector(".nqa-cited mark");
  const top = (element) => element.getBoundingClientRect().top;
  if (mark) sheet.scrollTop += top(mark) - top(sheet) - 48;
}
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest('a[href^="#nqa-src-"]');
  if (!link) return;
  event.preventDefault();
  event.stopPropagation();
  const card = document.getElementById(link.getAttribute("href").slice(1));
  if (!card) return;
  if (window.matchMedia(NARROW).matches) openSheet();
  card.open = true;
  card.scrollIntoView({block: "center"});
  card.classList.add("nqa-flash");
  setTimeout(() => card.classList.remove("nqa-flash"), 1500);
}, true);
</script>"""

HEAD = CLICK_MARKERS
OPEN_SHEET = "() => openSheet()"
CLOSE_SHEET = '() => document.getElementById("sources-col").classList.remove("nqa-sheet")'

# the sources panel's js_on_load: "Show in English" asks the server (Backend.translate) and puts
# the translation under the original, as text (never as HTML), marked as machine translation
TRANSLATE = """
element.addEventListener("click", async (event) => {
  const button = event.target.closest && event.target.closest("button.nqa-translate");
  if (!button || button.disabled) return;
  event.preventDefault();
  event.stopPropagation();
  const out = button.nextElementSibling;
  const label = button.textContent;
  button.disabled = true;
  button.textContent = "Translating…";
  out.hidden = false;
  out.textContent = "";
  let result;
  try {
    const asked = {text: button.dataset.text, from: button.dataset.from, to: button.dataset.to};
    result = await server.translate(asked);
  } catch (error) {
    result = {error: "The translation failed: " + error};
  }
  if (result && result.text) {
    const text = document.createElement("p");
    text.className = "nqa-translated";
    text.lang = button.dataset.to;
    text.textContent = result.text;
    const note = document.createElement("p");
    note.className = "nqa-mt";
    note.textContent = result.note;
    out.replaceChildren(text, note);
    button.hidden = true;
  } else {
    out.textContent = "⚠️ " + ((result && result.error) || "No translation came back.");
    button.disabled = false;
    button.textContent = label;
  }
});
"""
