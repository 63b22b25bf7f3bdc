//! The vocabulary of changes: every audit action devid records, named once so both
//! backends, the API and the docs spell them alike.

/// An audit event's action, `<resource>.<past verb>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// A source's contributor report was ingested.
    ContributorsIngested,
    /// A person marked a contributor as a bot.
    ContributorBotFlagged,
    /// A person marked a contributor as not a bot, whatever the rules say.
    ContributorBotUnflagged,
    /// A person's bot decision was withdrawn: the rules decide again.
    ContributorBotFlagCleared,
    /// A suggestion was accepted: its identities were created, locked.
    SuggestionAccepted,
    /// A suggestion was rejected: its pairings became cannot-links.
    SuggestionRejected,
    /// A suggestion was hidden until its evidence changes.
    SuggestionSkipped,
    /// An identity was locked: uploads may no longer move it.
    IdentityLocked,
    /// An identity was unlocked.
    IdentityUnlocked,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::ContributorsIngested => "contributors.ingested",
            AuditAction::ContributorBotFlagged => "contributor.bot_flagged",
            AuditAction::ContributorBotUnflagged => "contributor.bot_unflagged",
            AuditAction::ContributorBotFlagCleared => "contributor.bot_flag_cleared",
            AuditAction::SuggestionAccepted => "suggestion.accepted",
            AuditAction::SuggestionRejected => "suggestion.rejected",
            AuditAction::SuggestionSkipped => "suggestion.skipped",
            AuditAction::IdentityLocked => "identity.locked",
            AuditAction::IdentityUnlocked => "identity.unlocked",
        }
    }
}
