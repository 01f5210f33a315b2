// ES module build for bundlers: the same source as the <script> tag
// (insights.js defines globalThis.Insights and, as a module, starts nothing).
import "./insights.js";

const { create, VERSION } = globalThis.Insights;
export { create, VERSION };
export default create;
