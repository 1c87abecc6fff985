// Bundled demo conversations for the "回放" (replay) menu. Customer turns refresh the suggestions.

export const DEMOS = [
  {
    id: "refund",
    title: "退款到账时间（VIP）",
    customer: { name: "李先生", tier: "VIP", order_id: "DD202611230001" },
    turns: [
      { role: "customer", text: "你好，在吗？" },
      { role: "agent", text: "您好，我是客服小优，请问有什么可以帮您？" },
      { role: "customer", text: "我上周退了一副耳机，订单 DD202611230001，退款多久能到账？我是用银行卡付的" },
    ],
  },
  {
    id: "logistics",
    title: "物流延迟（意图来自前文）",
    customer: { name: "陈女士", tier: "普通", order_id: "" },
    turns: [
      { role: "customer", text: "我买的扫地机器人，快递单号 SF1234567890，物流三天没更新了" },
      { role: "agent", text: "您好，我这边帮您查询一下，请稍等。" },
      { role: "agent", text: "查到包裹目前还在转运中心，可能是中转积压。" },
      { role: "customer", text: "那大概还要几天？" },
    ],
  },
  {
    id: "invoice",
    title: "开发票（公司报销）",
    customer: { name: "周先生", tier: "普通", order_id: "DD202611180456" },
    turns: [
      { role: "customer", text: "你好，订单 DD202611180456 的发票怎么开？" },
      { role: "agent", text: "您好，请问需要个人发票还是单位发票？" },
      { role: "customer", text: "公司报销用，需要增值税专用发票，抬头和税号怎么填？" },
    ],
  },
  {
    id: "angry",
    title: "愤怒客户：退款投诉",
    customer: { name: "王女士", tier: "普通", order_id: "" },
    turns: [
      { role: "customer", text: "我退货一个星期了，退款怎么还没到账？" },
      { role: "agent", text: "非常抱歉让您久等了，我马上帮您查询退款进度。" },
      { role: "customer", text: "上次也说帮我查，到现在还没到！！" },
      { role: "customer", text: "你们就是骗子！再不退钱我就去投诉，打12315！！！" },
    ],
  },
  {
    id: "english",
    title: "English: international shipping",
    customer: { name: "Ms. Tan", tier: "普通", order_id: "" },
    turns: [
      { role: "customer", text: "Hi, do you ship to Singapore? How long does international delivery take?" },
    ],
  },
];

export function findDemo(id) {
  return DEMOS.find((d) => d.id === id) || null;
}
