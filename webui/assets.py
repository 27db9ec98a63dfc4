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
"""

# [n] in an answer links to #nqa-src-n (webui.chat.linked): open that card and bring it into view
CLICK_MARKERS = """<script>
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest('a[href^="#nqa-src-"]');
  if (!link) return;
  event.preventDefault();
  event.stopPropagation();
  const card = document.getElementById(link.getAttribute("href").slice(1));
  if (!card) return;
  card.open = true;
  card.scrollIntoView({block: "center"});
  card.classList.add("nqa-flash");
  setTimeout(() => card.classList.remove("nqa-flash"), 1500);
}, true);
</script>"""

HEAD = CLICK_MARKERS
