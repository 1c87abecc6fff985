// The API key: kept in localStorage, edited in the settings box under the top bar.

import { $, toast } from "./ui.js";

const KEY_STORE = "assist.apiKey";
// `assist serve --dev` accepts this key; offering it on a loopback page saves a step in local development.
const DEV_KEY = "dev-key";
const LOOPBACK = ["localhost", "127.0.0.1", "[::1]", "::1"];

function storedKey() {
  try {
    return localStorage.getItem(KEY_STORE) || "";
  } catch {
    return "";
  }
}

function isDev() {
  return LOOPBACK.includes(location.hostname) || new URLSearchParams(location.search).has("dev");
}

/**
 * Wires the settings box. onSaved(key) runs after the agent saved a key.
 * Returns { key() -> the current API key ("" if none), open(focus) -> shows the box (focus: select the key) }.
 * The box opens by itself when there is no key at all.
 */
export function createSettings({ onSaved }) {
  let apiKey = storedKey() || (isDev() ? DEV_KEY : "");

  function renderNote() {
    const note = $("api-key-note");
    if (!storedKey() && apiKey === DEV_KEY) note.textContent = "开发模式：已预填默认 key「dev-key」（仅 assist serve --dev 接受）。保存后存于本浏览器 localStorage。";
    else if (!apiKey) note.textContent = "请输入 API key（由管理员提供），保存在本浏览器 localStorage。";
    else note.textContent = "已保存在本浏览器（localStorage），随请求以 X-API-Key 发送。";
  }

  function open(focus) {
    $("settings").hidden = false;
    $("settings-toggle").setAttribute("aria-expanded", "true");
    if (focus) {
      $("api-key").focus();
      $("api-key").select();
    }
  }

  function close() {
    $("settings").hidden = true;
    $("settings-toggle").setAttribute("aria-expanded", "false");
  }

  $("settings-toggle").addEventListener("click", () => ($("settings").hidden ? open(true) : close()));
  $("api-key").value = apiKey;
  $("settings-form").addEventListener("submit", (e) => {
    e.preventDefault();
    apiKey = $("api-key").value.trim();
    try {
      localStorage.setItem(KEY_STORE, apiKey);
    } catch {
      /* private mode: the key lasts for this page only */
    }
    renderNote();
    close();
    toast("API key 已保存");
    onSaved(apiKey);
  });
  renderNote();
  if (!apiKey) open(false);

  return { key: () => apiKey, open };
}
