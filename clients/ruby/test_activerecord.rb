# lockhier from Ruby on Rails' ActiveRecord (Debian's ruby-activerecord, PostgreSQL adapter).
# The server comes from PGHOST/PGPORT/PGUSER, as for psql.
require "minitest/autorun"
require "active_record"
require "pg"
require_relative "recipes"

CONFIG = {
  adapter: "postgresql",
  database: ENV.fetch("LOCKHIER_CLIENTS_RUBY_DB", "lockhier_clients_ruby"),
  host: ENV["PGHOST"], port: ENV["PGPORT"], username: ENV["PGUSER"],
}.freeze
ActiveRecord::Base.establish_connection(CONFIG.merge(application_name: "field editor"))

# A background job's own connections (a snapshot, an import, another editor).
class JobRecord < ActiveRecord::Base
  self.abstract_class = true
  establish_connection(CONFIG.merge(application_name: "snapshot #7"))
end

# Workers on a pool of one connection.
class WorkerRecord < ActiveRecord::Base
  self.abstract_class = true
  establish_connection(CONFIG.merge(application_name: "backup worker", pool: 1))
end

class Observer < ActiveRecord::Base
  self.abstract_class = true
  establish_connection(CONFIG.merge(application_name: "observer"))
end

IMPORT_CLASSES = "ARRAY['field__deletion', 'field__type_update', 'field__incompatible_update']".freeze

class LockhierActiveRecordTest < Minitest::Test
  def self.test_order = :alpha # readable output in a fixed order; each test stands alone anyway

  def teardown
    [ActiveRecord::Base, JobRecord, WorkerRecord, Observer].each { |model| model.connection_pool.disconnect! }
  end

  def job_pid
    JobRecord.connection.select_value("SELECT pg_backend_pid()")
  end

  def assert_names_holder(detail, pid, application_name)
    assert_includes detail, "process #{pid} "
    assert_includes detail, %(application_name "#{application_name}")
  end

  def field_name(id)
    Observer.connection.select_value("SELECT name FROM database_field WHERE id = #{Integer(id)}")
  end

  def blocker_pids(call)
    Observer.connection.select_values("SELECT pid FROM lockhier.#{call}")
  end

  def test_1_snapshot_makes_field_update_fail_with_who_is_in_the_way
    before = field_name(99)
    busy = nil
    pid = nil
    JobRecord.transaction do
      JobRecord.connection.execute("SELECT lockhier.lock_application(7, mode => 'share')")
      pid = job_pid
      busy = assert_raises(FieldBusy) { update_field(7, 12, 99, "renamed during snapshot") }
    end
    assert_equal 'operation in progress: cannot lock field 99 (table 12, application 7) for "field__update"', busy.message
    assert_match(/\ABlocked by a share lock on all classes for application 7, held by process \d+ /, busy.detail)
    assert_names_holder(busy.detail, pid, "snapshot #7")
    assert_instance_of ActiveRecord::LockWaitTimeout, busy.cause # Rails maps SQLSTATE 55P03 to it
    assert_instance_of PG::LockNotAvailable, busy.cause.cause
    assert_equal "55P03", busy.cause.cause.result.error_field(PG::PG_DIAG_SQLSTATE)
    assert_equal before, field_name(99)
    update_field(7, 12, 99, "renamed after snapshot") # the snapshot has ended
    assert_equal "renamed after snapshot", field_name(99)
  end

  def test_2_import_blocks_field_deletion_but_not_rename
    error = nil
    pid = nil
    JobRecord.transaction do
      JobRecord.connection.execute("SELECT lockhier.lock_table(7, 12, #{IMPORT_CLASSES}, 'share')")
      pid = job_pid
      ActiveRecord::Base.transaction do
        ActiveRecord::Base.connection.execute("SELECT lockhier.lock_field(7, 12, 99, 'field__rename')")
        DatabaseField.where(id: 99).update_all(name: "renamed during import")
      end
      error = assert_raises(ActiveRecord::LockWaitTimeout) do
        ActiveRecord::Base.transaction do
          ActiveRecord::Base.connection.execute("SELECT lockhier.lock_field(7, 12, 99, 'field__deletion')")
          DatabaseField.where(id: 99).delete_all
        end
      end
    end
    result = error.cause.result
    assert_equal "55P03", result.error_field(PG::PG_DIAG_SQLSTATE)
    assert_match(/for "field__deletion"\z/, result.error_field(PG::PG_DIAG_MESSAGE_PRIMARY))
    detail = result.error_field(PG::PG_DIAG_MESSAGE_DETAIL)
    assert_includes detail, '"field__deletion" for table 12 (application 7)'
    assert_names_holder(detail, pid, "snapshot #7")
    assert_equal "renamed during import", field_name(99)
  end

  def test_3_try_lock_returns_false_and_transaction_stays_usable
    JobRecord.transaction do
      JobRecord.connection.execute("SELECT lockhier.lock_field(7, 12, 99, 'field__update')")
      ActiveRecord::Base.transaction do
        DatabaseField.where(id: 100).update_all(name: "first")
        got = ActiveRecord::Base.connection.select_value("SELECT lockhier.try_lock_field(7, 12, 99, 'field__update')")
        assert_equal false, got
        DatabaseField.where(id: 101).update_all(name: "second")
      end
    end
    assert_equal %w[first second], [field_name(100), field_name(101)]
  end

  def test_4_bounded_wait_succeeds_when_holder_commits_in_time
    started = Queue.new
    seen_waiting = false
    other_editor = Thread.new do # its own thread, so its own connection
      JobRecord.connection_pool.with_connection do
        JobRecord.transaction do
          JobRecord.connection.execute("SELECT lockhier.lock_field(7, 12, 99, 'field__update')")
          started << true
          # Commits once the request below is seen queued behind this lock (in pg_locks).
          until seen_waiting
            seen_waiting = JobRecord.connection.select_value(
              "SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND NOT granted)")
            sleep 0.05 unless seen_waiting
          end
        end
      end
    end
    started.pop
    ActiveRecord::Base.transaction do
      ActiveRecord::Base.connection.execute("SELECT lockhier.lock_field(7, 12, 99, 'field__update', wait => '30 s')")
      DatabaseField.where(id: 99).update_all(name: "after waiting")
    end
    other_editor.join
    assert seen_waiting # it queued, and was granted when the other editor committed
    assert_equal "after waiting", field_name(99)
  end

  def test_5_session_lock_outlives_the_transaction_in_a_pooled_connection
    backup = "blockers_application(7, 'app_backup')"
    pid = WorkerRecord.connection_pool.with_connection do |conn|
      WorkerRecord.transaction { conn.execute("SELECT lockhier.session_lock_application(7, 'app_backup')") }
      conn.select_value("SELECT pg_backend_pid()")
    end
    # Back in the pool, idle; its backend still holds the session lock.
    assert_equal 1, WorkerRecord.connection_pool.stat[:idle]
    assert_equal [pid], blocker_pids(backup)
    WorkerRecord.connection_pool.with_connection do |conn|
      assert_equal pid, conn.select_value("SELECT pg_backend_pid()")
      assert_equal 1, conn.select_value("SELECT lockhier.session_unlock_all()")
    end
    assert_equal [], blocker_pids(backup)
  end

  def test_6_row_lock_helper_names_the_table_the_key_and_the_holder
    error = nil
    pid = nil
    JobRecord.transaction do
      JobRecord.connection.execute("SELECT lockhier.lock_rows('database_field', ARRAY[99])")
      pid = job_pid
      error = assert_raises(ActiveRecord::LockWaitTimeout) do
        ActiveRecord::Base.transaction do
          ActiveRecord::Base.connection.execute("SELECT lockhier.lock_rows('database_field', ARRAY[99])")
        end
      end
      ActiveRecord::Base.transaction do
        conn = ActiveRecord::Base.connection
        assert_equal false, conn.select_value("SELECT lockhier.try_lock_rows('database_field', ARRAY[99])")
        assert_equal 2, conn.select_value("SELECT lockhier.lock_rows('database_field', ARRAY[100, 101])")
      end
    end
    result = error.cause.result
    assert_equal "operation in progress: cannot lock database_field rows with id 99 for update",
                 result.error_field(PG::PG_DIAG_MESSAGE_PRIMARY)
    assert_names_holder(result.error_field(PG::PG_DIAG_MESSAGE_DETAIL), pid, "snapshot #7")
  end
end
