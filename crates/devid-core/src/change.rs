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

/// What a change set did: the kind of write request that made it. Every write that
/// changed something is one change set, and its audit events belong to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// Identities created or moved by an upload (JSON, CSV or the previous API).
    Upload,
    /// Identities deleted.
    Delete,
    /// An integration created, renamed or deleted (with its identities).
    Integration,
    /// An API key created or revoked.
    Key,
    /// A source's contributor report ingested.
    Contributors,
    /// Bot decisions set or withdrawn.
    BotFlag,
    /// A suggestion accepted (its identities, locked), rejected or skipped.
    Suggestion,
    /// Identities locked or unlocked.
    Lock,
    /// Another change set undone.
    Revert,
    /// A webhook registered or deleted.
    Webhook,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 10] = [
        ChangeKind::Upload,
        ChangeKind::Delete,
        ChangeKind::Integration,
        ChangeKind::Key,
        ChangeKind::Contributors,
        ChangeKind::BotFlag,
        ChangeKind::Suggestion,
        ChangeKind::Lock,
        ChangeKind::Revert,
        ChangeKind::Webhook,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Upload => "upload",
            ChangeKind::Delete => "delete",
            ChangeKind::Integration => "integration",
            ChangeKind::Key => "key",
            ChangeKind::Contributors => "contributors",
            ChangeKind::BotFlag => "bot-flag",
            ChangeKind::Suggestion => "suggestion",
            ChangeKind::Lock => "lock",
            ChangeKind::Revert => "revert",
            ChangeKind::Webhook => "webhook",
        }
    }

    /// Any case, nothing around it: the API documents the accepted forms exactly.
    pub fn parse(text: &str) -> Option<ChangeKind> {
        ChangeKind::ALL.into_iter().find(|k| k.as_str().eq_ignore_ascii_case(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_kinds_read_back_as_written() {
        for kind in ChangeKind::ALL {
            assert_eq!(ChangeKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ChangeKind::parse("Bot-Flag"), Some(ChangeKind::BotFlag));
        assert_eq!(ChangeKind::parse(" upload"), None);
        assert_eq!(ChangeKind::parse("merge"), None);
    }
}
