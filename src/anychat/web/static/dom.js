// Building DOM nodes without HTML strings: every string given here becomes a text node or an
// attribute value, never markup, so text from other people cannot turn into elements.

/**
 * Create an element. `props`: `class`, `text` (textContent), `dataset`, `on<event>` listeners,
 * anything else an attribute (`true` = present, `false`/`null` = absent).
 * Children: nodes, or strings (appended as text nodes).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === false || value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

/** Remove every child of `node`. */
export function clear(node) {
  node.replaceChildren();
}

/** The element with this id (the page's fixed skeleton, from index.html). */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`page skeleton lacks #${id}`);
  return node;
}
