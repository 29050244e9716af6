-- Games, their moves and the transactional outbox.
--
-- A game row holds the state after its last journaled event; game_moves holds
-- every move, so the game can be replayed; outbox holds every event until the
-- relay has published it to Kafka.

CREATE TABLE games (
    id            text PRIMARY KEY,
    white         text NOT NULL,
    black         text NOT NULL,
    status        text NOT NULL DEFAULT 'started',
    winner        text,
    reason        text,
    fen           text NOT NULL,
    ply           integer NOT NULL DEFAULT 0 CHECK (ply >= 0),
    -- seq of the game_created event and of the last event journaled.
    created_seq   integer NOT NULL,
    last_seq      integer NOT NULL,
    -- Clock configuration: initial_ms is null for a game without a clock.
    initial_ms    integer,
    increment_ms  integer NOT NULL DEFAULT 0,
    -- Time left after the last event.
    white_ms      integer,
    black_ms      integer,
    -- The side whose draw offer is pending.
    draw_offer    text,
    -- Owner epoch: an append with an older epoch is fenced.
    epoch         bigint NOT NULL DEFAULT 0,
    -- The game_ended event, once there is one.
    ended_seq     integer,
    ended_ply     integer,
    ended_at      timestamptz,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (status IN ('started', 'mate', 'stalemate', 'resign', 'timeout',
                      'draw', 'aborted')),
    CHECK (winner IN ('white', 'black')),
    CHECK (draw_offer IN ('white', 'black')),
    CHECK (last_seq >= created_seq)
);

-- Finding a player's games, newest first.
CREATE INDEX games_white_idx ON games (white, created_at DESC);
CREATE INDEX games_black_idx ON games (black, created_at DESC);
-- Live games, e.g. for re-activation after a restart.
CREATE INDEX games_started_idx ON games (updated_at) WHERE status = 'started';

CREATE TABLE game_moves (
    game_id    text NOT NULL REFERENCES games (id) ON DELETE CASCADE,
    ply        integer NOT NULL CHECK (ply > 0),
    seq        integer NOT NULL,
    uci        text NOT NULL,
    san        text NOT NULL,
    -- The position after the move: a replay needs no chess engine, and a
    -- client asking for moves since ply N gets each position directly.
    fen        text NOT NULL,
    white_ms   integer,
    black_ms   integer,
    played_at  timestamptz NOT NULL,
    PRIMARY KEY (game_id, ply),
    UNIQUE (game_id, seq)
);

CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    event_id      text NOT NULL UNIQUE,
    game_id       text NOT NULL,
    seq           integer NOT NULL,
    type          text NOT NULL,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);

-- The relay reads unpublished rows in id order; the backlog metric counts them.
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
-- Pruning published rows by age.
CREATE INDEX outbox_published_at_idx ON outbox (published_at)
    WHERE published_at IS NOT NULL;
