"""Name, pinyin and company-name tables for the demo company generator (data only)."""

# (surname, pinyin, relative frequency).  Readings are the surname readings
# (曾 zeng, 单 is avoided on purpose because its surname reading surprises people).
SURNAMES: tuple[tuple[str, str, int], ...] = (
    ("王", "wang", 9), ("李", "li", 9), ("张", "zhang", 9), ("刘", "liu", 8), ("陈", "chen", 8),
    ("杨", "yang", 6), ("黄", "huang", 6), ("赵", "zhao", 6), ("吴", "wu", 5), ("周", "zhou", 5),
    ("徐", "xu", 4), ("孙", "sun", 4), ("马", "ma", 4), ("朱", "zhu", 4), ("胡", "hu", 4),
    ("郭", "guo", 3), ("何", "he", 3), ("高", "gao", 3), ("林", "lin", 3), ("罗", "luo", 3),
    ("郑", "zheng", 3), ("梁", "liang", 3), ("谢", "xie", 3), ("宋", "song", 3), ("唐", "tang", 3),
    ("许", "xu", 2), ("韩", "han", 2), ("冯", "feng", 2), ("邓", "deng", 2), ("曹", "cao", 2),
    ("彭", "peng", 2), ("曾", "zeng", 2), ("肖", "xiao", 2), ("田", "tian", 2), ("董", "dong", 2),
    ("袁", "yuan", 2), ("潘", "pan", 2), ("于", "yu", 2), ("蒋", "jiang", 2), ("蔡", "cai", 2),
    ("余", "yu", 2), ("杜", "du", 2), ("叶", "ye", 2), ("程", "cheng", 2), ("苏", "su", 2),
    ("魏", "wei", 2), ("吕", "lv", 2), ("丁", "ding", 2), ("任", "ren", 2), ("沈", "shen", 2),
    ("姚", "yao", 1), ("卢", "lu", 1), ("姜", "jiang", 1), ("崔", "cui", 1), ("钟", "zhong", 1),
    ("谭", "tan", 1), ("陆", "lu", 1), ("汪", "wang", 1), ("范", "fan", 1), ("金", "jin", 1),
    ("石", "shi", 1), ("廖", "liao", 1), ("贾", "jia", 1), ("夏", "xia", 1), ("韦", "wei", 1),
    ("付", "fu", 1), ("方", "fang", 1), ("白", "bai", 1), ("邹", "zou", 1), ("孟", "meng", 1),
    ("熊", "xiong", 1), ("秦", "qin", 1), ("邱", "qiu", 1), ("江", "jiang", 1), ("尹", "yin", 1),
    ("薛", "xue", 1), ("闫", "yan", 1), ("段", "duan", 1), ("雷", "lei", 1), ("侯", "hou", 1),
    ("龙", "long", 1), ("史", "shi", 1), ("陶", "tao", 1), ("黎", "li", 1), ("贺", "he", 1),
    ("顾", "gu", 1), ("毛", "mao", 1), ("郝", "hao", 1), ("龚", "gong", 1), ("邵", "shao", 1),
    ("万", "wan", 1), ("钱", "qian", 1), ("严", "yan", 1), ("武", "wu", 1), ("戴", "dai", 1),
    ("莫", "mo", 1), ("孔", "kong", 1), ("向", "xiang", 1), ("汤", "tang", 1), ("欧阳", "ouyang", 1),
)

# Characters used in given names, with the reading they take in names.
GIVEN_CHARS: tuple[tuple[str, str], ...] = (
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"),
    ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"),
    ("杰", "jie"), ("娟", "juan"), ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("秀", "xiu"),
    ("霞", "xia"), ("平", "ping"), ("刚", "gang"), ("桂", "gui"), ("英", "ying"), ("华", "hua"),
    ("慧", "hui"), ("建", "jian"), ("国", "guo"), ("玉", "yu"), ("兰", "lan"), ("萍", "ping"),
    ("红", "hong"), ("鹏", "peng"), ("辉", "hui"), ("晨", "chen"), ("宇", "yu"), ("浩", "hao"),
    ("然", "ran"), ("欣", "xin"), ("怡", "yi"), ("佳", "jia"), ("琪", "qi"), ("雪", "xue"),
    ("梅", "mei"), ("波", "bo"), ("斌", "bin"), ("宁", "ning"), ("凯", "kai"), ("俊", "jun"),
    ("峰", "feng"), ("亮", "liang"), ("婷", "ting"), ("颖", "ying"), ("倩", "qian"), ("文", "wen"),
    ("博", "bo"), ("思", "si"), ("雨", "yu"), ("轩", "xuan"), ("子", "zi"), ("涵", "han"),
    ("梓", "zi"), ("睿", "rui"), ("嘉", "jia"), ("昊", "hao"), ("天", "tian"), ("一", "yi"),
    ("诺", "nuo"), ("晓", "xiao"), ("东", "dong"), ("志", "zhi"), ("海", "hai"), ("春", "chun"),
    ("云", "yun"), ("飞", "fei"), ("鑫", "xin"), ("宏", "hong"), ("彬", "bin"), ("琳", "lin"),
    ("丹", "dan"), ("璐", "lu"), ("瑶", "yao"), ("蕾", "lei"), ("薇", "wei"), ("岩", "yan"),
    ("健", "jian"), ("立", "li"), ("新", "xin"), ("永", "yong"), ("成", "cheng"), ("坤", "kun"),
    ("旭", "xu"), ("阳", "yang"), ("帅", "shuai"), ("晶", "jing"), ("燕", "yan"), ("玲", "ling"),
    ("莉", "li"), ("青", "qing"), ("淑", "shu"), ("珍", "zhen"), ("凤", "feng"), ("洁", "jie"),
    ("秋", "qiu"), ("月", "yue"), ("彤", "tong"), ("悦", "yue"), ("可", "ke"), ("欢", "huan"),
    ("楠", "nan"), ("毅", "yi"), ("诚", "cheng"), ("豪", "hao"), ("泽", "ze"), ("铭", "ming"),
    ("哲", "zhe"), ("晗", "han"), ("冰", "bing"), ("蓉", "rong"), ("媛", "yuan"), ("露", "lu"),
    ("馨", "xin"), ("昕", "xin"), ("萌", "meng"), ("婧", "jing"), ("芸", "yun"), ("逸", "yi"),
    ("航", "hang"), ("凡", "fan"), ("安", "an"), ("卓", "zhuo"), ("远", "yuan"), ("舒", "shu"),
    ("雯", "wen"), ("振", "zhen"), ("德", "de"), ("福", "fu"), ("良", "liang"), ("松", "song"),
)

# Cities by sales region: (city, telephone area code, administrative division code).
CITIES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "east": (("上海", "021", "310115"), ("杭州", "0571", "330106"), ("南京", "025", "320105"),
             ("苏州", "0512", "320505"), ("宁波", "0574", "330212"), ("合肥", "0551", "340104")),
    "north": (("北京", "010", "110105"), ("天津", "022", "120116"), ("济南", "0531", "370102"),
              ("青岛", "0532", "370212"), ("郑州", "0371", "410105"), ("石家庄", "0311", "130102")),
    "south": (("广州", "020", "440106"), ("深圳", "0755", "440305"), ("厦门", "0592", "350206"),
              ("福州", "0591", "350102"), ("长沙", "0731", "430104"), ("南宁", "0771", "450103")),
    "west": (("成都", "028", "510107"), ("重庆", "023", "500103"), ("西安", "029", "610113"),
             ("昆明", "0871", "530102"), ("贵阳", "0851", "520102"), ("武汉", "027", "420106")),
}

# Trade names (字号) with pinyin, used for company names and contact e-mail domains.
BRANDS: tuple[tuple[str, str], ...] = (
    ("华信", "huaxin"), ("恒通", "hengtong"), ("鼎盛", "dingsheng"), ("瑞丰", "ruifeng"),
    ("嘉禾", "jiahe"), ("中联", "zhonglian"), ("天成", "tiancheng"), ("宏达", "hongda"),
    ("金桥", "jinqiao"), ("永泰", "yongtai"), ("新锐", "xinrui"), ("博远", "boyuan"),
    ("汇通", "huitong"), ("众创", "zhongchuang"), ("远景", "yuanjing"), ("凯源", "kaiyuan"),
    ("立信", "lixin"), ("德润", "derun"), ("盛世", "shengshi"), ("东方", "dongfang"),
    ("明辉", "minghui"), ("安达", "anda"), ("海纳", "haina"), ("卓越", "zhuoyue"),
    ("银河", "yinhe"), ("和美", "hemei"), ("启航", "qihang"), ("星辰", "xingchen"),
    ("融创", "rongchuang"), ("万象", "wanxiang"), ("锦程", "jincheng"), ("百川", "baichuan"),
    ("润达", "runda"), ("信达", "xinda"), ("佳利", "jiali"), ("华瑞", "huarui"),
    ("正元", "zhengyuan"), ("同创", "tongchuang"), ("弘毅", "hongyi"), ("丰源", "fengyuan"),
)

INDUSTRIES: tuple[str, ...] = (
    "贸易", "科技", "实业", "物流", "电子", "医药", "建材", "食品", "机械", "信息技术",
    "环保", "供应链", "化工", "服装", "餐饮管理", "咨询", "新能源", "汽车零部件",
)

PRODUCTS: tuple[str, ...] = (
    "CRM系统", "智能仓储", "年度维保", "数据平台", "办公设备", "云服务", "培训服务", "定制开发",
)

EXPENSE_KINDS: tuple[str, ...] = (
    "差旅报销", "客户招待", "办公用品", "市内交通", "培训费", "通讯费", "会议费",
)
# Only these kinds plausibly reach tens of thousands of yuan.
LARGE_EXPENSE_KINDS: tuple[str, ...] = ("设备采购", "会议费", "市场活动费", "软件订阅")

APPROVAL_TITLES: dict[str, tuple[str, ...]] = {
    "用印申请": ("代理协议用印", "投标文件用印", "框架合同用印"),
    "出差申请": ("客户拜访出差", "展会出差", "项目驻场出差"),
    "采购申请": ("笔记本电脑采购", "办公家具采购", "软件许可采购"),
    "合同会签": ("年度框架合同会签", "渠道合作协议会签"),
    "付款申请": ("供应商预付款", "展会场地尾款"),
}

DOCUMENT_TITLES: tuple[str, ...] = (
    "销售政策", "客户拜访记录模板", "员工手册", "信息安全规范", "季度经营分析", "产品报价单",
    "投标方案", "渠道合作方案", "年度预算", "薪酬福利说明", "会议纪要", "项目周报",
    "培训课件", "采购管理制度", "合同模板", "品牌宣传手册",
)

MOBILE_PREFIXES: tuple[str, ...] = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152",
    "153", "155", "156", "158", "159", "177", "180", "185", "186", "187", "188", "189", "199",
)

# Bank-card / settlement-account prefixes (ICBC, CCB, ABC, BOC, CMB).
BANK_PREFIXES: tuple[str, ...] = ("622202", "621700", "622848", "621661", "622588")
