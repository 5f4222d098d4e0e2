"""The console's words, zh-CN first and English; finding labels and date formats come from ``audit.i18n``."""

from __future__ import annotations

from app.decisions.reasons import reason_texts
from audit import i18n as audit_i18n

LANGS = audit_i18n.LANGS
DEFAULT_LANG = audit_i18n.DEFAULT_LANG

# key: (zh-CN, en)
_CATALOGUE: dict[str, tuple[str, str]] = {
    "app.title": ("accessgov 权限治理控制台", "accessgov governance console"),
    "nav.dashboard": ("总览", "Dashboard"),
    "nav.findings": ("审计发现", "Findings"),
    "nav.campaigns": ("复核活动", "Reviews"),
    "nav.people": ("人员权限", "People"),
    "nav.policy": ("策略", "Policy"),
    "nav.decisions": ("决策日志", "Decision log"),
    "nav.trail": ("审计记录", "Audit trail"),
    "nav.sync": ("身份同步", "Sync"),
    "nav.reports": ("报告", "Reports"),
    "nav.signed_in_as": ("当前用户", "Signed in as"),
    "nav.duty": ("职责", "Duty"),
    "nav.sign_out": ("退出登录", "Sign out"),
    "nav.language": ("语言", "Language"),
    "duty.console_system_admin": ("系统管理员", "System administrator"),
    "duty.console_security_admin": ("安全管理员", "Security administrator"),
    "duty.console_auditor": ("审计管理员", "Audit administrator"),
    "login.title": ("登录", "Sign in"),
    "login.intro": ("请通过公司统一身份认证登录。", "Sign in through your company's single sign-on."),
    "login.with": ("登录：", "Sign in with "),
    "login.none": ("尚未配置身份提供方（ACCESSGOV_CONSOLE__IDPS）。",
                   "No identity provider is configured (ACCESSGOV_CONSOLE__IDPS)."),
    "login.again": ("重新登录", "Sign in again"),
    "signed_out.title": ("已退出登录", "Signed out"),
    "signed_out.body": ("您已退出控制台。", "You have signed out of the console."),
    "expired.title": ("会话已过期", "Session expired"),
    "expired.body": ("您的会话已过期（长时间未操作或已达到最长登录时间），请重新登录。",
                     "Your session has expired (idle too long, or signed in for too long). Please sign in again."),
    "error.403.title": ("无权访问", "Access denied"),
    "error.403.body": ("您没有此操作的权限。此次拒绝已记录在决策日志中。",
                       "You do not have permission for this. The refusal is recorded in the decision log."),
    "error.404.title": ("页面不存在", "Not found"),
    "error.404.body": ("您要找的页面或记录不存在。", "The page or record you asked for does not exist."),
    "error.csrf.title": ("表单已失效", "Form expired"),
    "error.csrf.body": ("表单校验失败（缺少或错误的防伪令牌），未做任何更改。请返回页面重试。",
                        "The form failed its check (missing or wrong anti-forgery token); nothing was changed. "
                        "Go back and try again."),
    "error.signin.title": ("登录失败", "Sign-in failed"),
    "error.signin.body": ("登录未能完成，未建立会话。", "The sign-in could not be completed; no session was started."),
    "error.no_duty.title": ("未授予控制台职责", "No console duty"),
    "error.no_duty.body": ("您在组织目录中没有系统管理员、安全管理员或审计管理员职责，不能使用控制台。"
                           "职责须在目录中授予，登录时的声明不授予任何权限。",
                           "The directory gives you none of the system administrator, security administrator "
                           "or auditor duties, so you cannot use the console. Duties are granted in the "
                           "directory; claims at sign-in grant nothing."),
    "error.two_duties.title": ("职责冲突", "Conflicting duties"),
    "error.two_duties.body": ("根据职责分离（三员分立）要求，同一人不能同时担任以下职责，请联系安全管理员处理：",
                              "Separation of duties: one person may not hold more than one of these duties. "
                              "Ask the security administrator to resolve it:"),
    "error.unknown_person.title": ("未找到对应人员", "Unknown person"),
    "error.unknown_person.body": ("您的登录身份未关联到组织目录中的在职人员。",
                                  "Your sign-in is not linked to an active person in the directory."),
    "error.back": ("返回总览", "Back to the dashboard"),
    "error.reason": ("原因", "Reason"),
    "dash.title": ("总览", "Dashboard"),
    "dash.open_by_severity": ("待处理发现（按严重程度）", "Open findings by severity"),
    "dash.open_by_kind": ("待处理发现（按类型）", "Open findings by kind"),
    "dash.open_total": ("待处理发现合计", "Open findings in all"),
    "dash.trend": ("近几个季度末的待处理发现", "Open findings at the end of recent quarters"),
    "dash.trend_desc": ("柱状图：每个季度末仍待处理的发现数量", "Bar chart: findings still open at each quarter's end"),
    "dash.campaigns": ("进行中的复核活动", "Review campaigns in progress"),
    "dash.no_campaigns": ("当前没有进行中的复核活动。", "No review campaign is in progress."),
    "dash.sync": ("身份同步状态", "Identity sync health"),
    "dash.no_findings": ("没有待处理的发现。", "No open findings."),
    "dash.last_run": ("最近一次审计", "Last audit run"),
    "dash.never": ("尚未运行", "Never run"),
    "col.kind": ("类型", "Kind"),
    "col.severity": ("严重程度", "Severity"),
    "col.count": ("数量", "Count"),
    "col.status": ("状态", "Status"),
    "col.person": ("人员", "Person"),
    "col.system": ("系统", "System"),
    "col.permission": ("权限", "Permission"),
    "col.first_seen": ("首次发现", "First seen"),
    "col.last_seen": ("最近发现", "Last seen"),
    "col.id": ("编号", "ID"),
    "col.name": ("名称", "Name"),
    "col.due": ("截止", "Due"),
    "col.progress": ("进度", "Progress"),
    "col.source": ("来源", "Source"),
    "col.last_run": ("最近运行", "Last run"),
    "col.result": ("结果", "Result"),
    "col.at": ("时间", "At"),
    "col.actor": ("操作人", "By"),
    "col.from": ("原状态", "From"),
    "col.to": ("新状态", "To"),
    "col.reason": ("原因", "Reason"),
    "col.quarters": ("出现季度", "Quarters seen"),
    "col.recommendation": ("建议", "Recommendation"),
    "col.accepted_until": ("风险接受至", "Risk accepted until"),
    "findings.title": ("审计发现", "Findings"),
    "findings.filter": ("筛选", "Filter"),
    "findings.any": ("全部", "Any"),
    "findings.sort": ("排序", "Sort by"),
    "findings.order_asc": ("升序", "Ascending"),
    "findings.order_desc": ("降序", "Descending"),
    "findings.apply": ("应用", "Apply"),
    "findings.none": ("没有符合条件的发现。", "No findings match."),
    "findings.total": ("共 {n} 条", "{n} in all"),
    "findings.page": ("第 {page} / {pages} 页", "Page {page} of {pages}"),
    "findings.prev": ("上一页", "Previous"),
    "findings.next": ("下一页", "Next"),
    "sort.severity": ("严重程度", "Severity"),
    "sort.kind": ("类型", "Kind"),
    "sort.first_seen": ("首次发现", "First seen"),
    "sort.last_seen": ("最近发现", "Last seen"),
    "sort.person": ("人员", "Person"),
    "sort.id": ("编号", "ID"),
    "finding.title": ("审计发现 #{id}", "Finding #{id}"),
    "finding.evidence": ("证据", "Evidence"),
    "finding.history": ("处理记录", "History"),
    "finding.decide": ("处理此发现", "Decide on this finding"),
    "finding.to": ("处理结果", "Decision"),
    "finding.to.accepted": ("接受风险至指定日期", "Accept the risk until a date"),
    "finding.to.remediated": ("标记为已整改", "Mark remediated"),
    "finding.to.open": ("重新打开", "Reopen"),
    "finding.until": ("接受风险至（日期）", "Accept the risk until (date)"),
    "finding.reason": ("原因（必填）", "Reason (required)"),
    "finding.submit": ("提交", "Submit"),
    "finding.saved": ("已保存。", "Saved."),
    "finding.refused": ("未保存：", "Not saved: "),
    "finding.bad_date": ("日期格式应为 YYYY-MM-DD。", "The date must be YYYY-MM-DD."),
    "finding.back": ("返回发现列表", "Back to the findings"),
    "sync.status.applied": ("已应用", "Applied"),
    "sync.status.unchanged": ("无变化", "Unchanged"),
    "sync.status.held": ("待确认", "Held"),
    "sync.status.failed": ("失败", "Failed"),
    "sync.status.running": ("运行中", "Running"),
    "sync.status.rejected": ("已拒绝", "Rejected"),
}


def _reason_words() -> dict[str, tuple[str, str]]:
    """A decision's reason codes (label group ``reason``), in the decision service's own words."""
    return {f"reason.{code}": (zh, en[:1].upper() + en[1:]) for code, (en, zh) in reason_texts().items()}


def add_words(words: dict[str, tuple[str, str]]) -> None:
    """Add a page module's words (key: (zh-CN, en)); a key may be defined once."""
    clash = sorted(set(words) & set(_CATALOGUE))
    if clash:
        raise ValueError(f"console words defined twice: {', '.join(clash)}")
    _CATALOGUE.update(words)


def t(key: str, lang: str, **values: object) -> str:
    """The console's text for ``key``, else the audit catalogue's, else the key; ``{name}`` filled in."""
    entry = _CATALOGUE.get(key)
    if entry is not None:
        text = entry[1] if audit_i18n.normalise_lang(lang) == "en" else entry[0]
    else:
        text = audit_i18n.t(key, lang)
    return text.format(**values) if values else text


def label(group: str, code: str | None, lang: str) -> str:
    """A vocabulary label (``kind``, ``severity``, ``finding_status``, ``duty``...) or the code itself."""
    if not code:
        return ""
    key = f"{group}.{code}"
    if key in _CATALOGUE or audit_i18n.has(key):
        return t(key, lang)
    return code


def pick_lang(cookie: str | None, accept_language: str | None) -> str:
    """The reader's language: their choice, else the browser's first language, else zh-CN."""
    if cookie in LANGS:
        return str(cookie)
    first = (accept_language or "").split(",")[0].split(";")[0].strip()
    return audit_i18n.normalise_lang(first) if first else DEFAULT_LANG


format_datetime = audit_i18n.format_datetime
format_date = audit_i18n.format_date
format_number = audit_i18n.format_number


add_words(_reason_words())
